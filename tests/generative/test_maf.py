"""The masked autoregressive flow as a density estimator: moments, normalisation, options."""

from __future__ import annotations

import numpy as np
import pytest

from generative import MAF

TRAINING = {"epochs": 25, "batch_size": 512, "learning_rate": 3e-3, "patience": 8}


def _conditional_gaussian(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x ~ N(mu(c), Sigma) with mu linear in c and a correlated covariance."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.0, 1.0, size=(n, 1))
    cov = np.array([[0.09, 0.06], [0.06, 0.25]])
    x = rng.multivariate_normal([0.0, 0.0], cov, size=n) + np.hstack([2.0 * c, -c])
    return x, c


@pytest.mark.parametrize("transform", ["affine", "spline"])
def test_conditional_gaussian_moments_in_context_bins(transform):
    # 10k samples per context value give statistical errors of about 0.005 on the means and
    # 1.4% on the variances, so the tolerances below (0.05 on means, 10% on variances, 0.1 on
    # the correlation) measure the model's bias, not noise.
    x, c = _conditional_gaussian(10_000, seed=1)
    model = MAF(
        transform=transform,
        n_transforms=4,
        hidden_features=32,
        training=TRAINING,
        random_state=0,
        verbose=False,
    ).fit(x, c)
    for value in (0.2, 0.5, 0.8):
        samples = model.sample(np.full((10_000, 1), value), random_state=1)
        np.testing.assert_allclose(samples.mean(axis=0), [2.0 * value, -value], atol=0.05)
        cov = np.cov(samples.T)
        np.testing.assert_allclose(np.diag(cov), [0.09, 0.25], rtol=0.10)
        corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
        assert corr == pytest.approx(0.4, abs=0.1)


def _bimodal(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.choice([-1.0, 1.5], size=(n, 1))
    return centres + 0.4 * rng.normal(size=(n, dim))


@pytest.mark.parametrize("dim", [1, 2])
def test_density_integrates_to_one(dim):
    x = _bimodal(5_000, dim, seed=3)
    model = MAF(
        transform="spline",
        n_transforms=3,
        hidden_features=32,
        training=TRAINING,
        random_state=0,
        verbose=False,
    ).fit(x)
    # The logit preprocessing bounds the support to the widened training range: integrate there.
    lo, hi = model.preprocessing_.steps[0].low_, model.preprocessing_.steps[0].high_
    n_grid = 4001 if dim == 1 else 201
    axes = [np.linspace(lo[i], hi[i], n_grid) for i in range(dim)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim)
    density = np.exp(model.log_prob(mesh)).reshape((n_grid,) * dim)
    integral = density
    for axis in reversed(axes):
        integral = np.trapezoid(integral, axis, axis=-1)
    assert integral == pytest.approx(1.0, abs=0.02)


def test_log_prob_is_minus_inf_outside_the_support():
    x = _bimodal(2_000, 1, seed=0)
    model = MAF(
        n_transforms=2, hidden_features=16, training={"epochs": 2}, random_state=0, verbose=False
    ).fit(x)
    lp = model.log_prob(np.array([[x.max() + 100.0], [0.0]]))
    assert lp[0] == -np.inf
    assert np.isfinite(lp[1])


def test_unconditional_sample_by_count():
    x = _bimodal(2_000, 2, seed=0)
    model = MAF(
        n_transforms=2, hidden_features=16, training={"epochs": 2}, random_state=0, verbose=False
    ).fit(x)
    assert model.sample(123, random_state=0).shape == (123, 2)
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(np.zeros((5, 1)))


@pytest.mark.parametrize(
    "options",
    [
        {"permutation": "random", "batch_norm": False},
        {"context_embedding": 8, "residual_blocks": True, "n_blocks": 2},
        {"preprocessing": "standard", "context_preprocessing": None},
    ],
)
def test_options_train_and_round_trip(options, tmp_path):
    x, c = _conditional_gaussian(1_000, seed=0)
    model = MAF(
        n_transforms=2,
        hidden_features=16,
        training={"epochs": 2},
        random_state=0,
        verbose=False,
        **options,
    ).fit(x, c)
    loaded = MAF.load(model.save(tmp_path / "m.pt"))
    np.testing.assert_array_equal(loaded.log_prob(x, c), model.log_prob(x, c))


def test_explicit_validation_data_are_used():
    x, c = _conditional_gaussian(1_500, seed=0)
    model = MAF(
        n_transforms=2, hidden_features=16, training={"epochs": 2}, random_state=0, verbose=False
    ).fit(x[:1000], c[:1000], X_val=x[1000:], context_val=c[1000:])
    assert model.history_.n_train == 1000
    assert model.history_.n_val == 500


@pytest.mark.parametrize(("option", "value"), [("transform", "cubic"), ("permutation", "lu")])
def test_invalid_option_is_named(option, value):
    x, c = _conditional_gaussian(200, seed=0)
    with pytest.raises(ValueError, match=option):
        MAF(**{option: value}, training={"epochs": 1}, verbose=False).fit(x, c)
