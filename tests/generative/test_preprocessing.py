"""Invertible preprocessing: round trips, exact log-Jacobians, fitting and serialisation."""

from __future__ import annotations

import numpy as np
import pytest

from generative.preprocessing import (
    Logit,
    MinMaxScaler,
    Pipeline,
    Standardizer,
    make_preprocessing,
    step_from_dict,
)


def _data() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.column_stack([rng.gamma(2.0, 1.0, 500), rng.normal(3.0, 0.2, 500)])


STEPS = {
    "minmax": lambda: MinMaxScaler(margin=0.05),
    "standard": Standardizer,
    "logit": lambda: Pipeline([MinMaxScaler(margin=0.05), Logit()]),
    "cathode": lambda: make_preprocessing("logit"),
}


@pytest.fixture(params=sorted(STEPS))
def fitted_step(request):
    return STEPS[request.param]().fit(_data())


def _numerical_logdet(step, x: np.ndarray, h: float = 1e-6) -> float:
    """log|det J| of the step at one point, by central differences."""
    d = x.size
    jac = np.empty((d, d))
    for j in range(d):
        e = np.zeros(d)
        e[j] = h
        jac[:, j] = (step.forward((x + e)[None])[0][0] - step.forward((x - e)[None])[0][0]) / (
            2 * h
        )
    return float(np.linalg.slogdet(jac)[1])


def test_round_trip_to_1e6(fitted_step):
    x = _data()
    z, _ = fitted_step.forward(x)
    np.testing.assert_allclose(fitted_step.inverse(z), x, rtol=0, atol=1e-6)


def test_logdet_matches_numerical_jacobian(fitted_step):
    x = _data()[:20]
    _, logdet = fitted_step.forward(x)
    numerical = [_numerical_logdet(fitted_step, row) for row in x]
    np.testing.assert_allclose(logdet, numerical, rtol=1e-5, atol=1e-5)


def test_minmax_maps_training_data_inside_unit_interval():
    x = _data()
    z, _ = MinMaxScaler(margin=0.05).fit(x).forward(x)
    assert z.min() > 0.0
    assert z.max() < 1.0
    # the margin leaves margin / (1 + 2 margin) free on each side
    np.testing.assert_allclose(z.min(axis=0), 0.05 / 1.1)


def test_standardizer_gives_zero_mean_unit_variance():
    z, _ = Standardizer().fit(_data()).forward(_data())
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-12)


def test_logit_outside_unit_interval_is_not_finite():
    z, logdet = Logit().forward(np.array([[1.5], [-0.1], [0.5]]))
    assert not np.isfinite(z[:2]).all(axis=1).any()
    assert np.isfinite(z[2]).all()
    assert np.isfinite(logdet[2])


def test_serialisation_round_trip(fitted_step):
    restored = step_from_dict(fitted_step.to_dict())
    x = _data()
    for a, b in zip(fitted_step.forward(x), restored.forward(x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_fitted_on_training_data_only():
    train, other = _data(), _data() + 10.0
    step = Standardizer().fit(train)
    z, _ = step.forward(other)
    assert z.mean() > 5.0  # the statistics of `other` were not used


@pytest.mark.parametrize("step", [MinMaxScaler(), Standardizer()])
def test_constant_column_is_rejected(step):
    x = np.column_stack([np.arange(10.0), np.ones(10)])
    with pytest.raises(ValueError, match=r"columns \[1\] are constant"):
        step.fit(x)


def test_use_before_fit_raises():
    from generative import NotFittedError

    with pytest.raises(NotFittedError):
        Standardizer().forward(_data())


def test_unknown_name_is_rejected():
    with pytest.raises(ValueError, match="unknown preprocessing 'bogus'"):
        make_preprocessing("bogus")
