"""`decorrelate`: a density model removes the linear context trend of its features exactly."""

from __future__ import annotations

import numpy as np
import pytest

from generative import MAF, DensityModel

TRAINING = {"epochs": 15, "batch_size": 256, "learning_rate": 3e-3}


def trend_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two features whose means follow the context linearly, with a gap in the context."""
    rng = np.random.default_rng(seed)
    m = np.concatenate([rng.uniform(0.0, 1.0, n // 2), rng.uniform(2.0, 3.0, n - n // 2)])
    X = np.column_stack([3.0 * m, -m]) + rng.normal(0.0, [0.3, 0.2], (n, 2))
    return X, m[:, None]


def decorrelated(**params) -> DensityModel:
    return MAF(
        n_transforms=2,
        hidden_features=16,
        preprocessing="standard",
        decorrelate=True,
        training=TRAINING,
        random_state=0,
        verbose=False,
        **params,
    )


@pytest.fixture(scope="module")
def fitted() -> DensityModel:
    return decorrelated().fit(*trend_data(4000, 0))


def test_the_trend_is_learned_and_carried_into_the_gap(fitted):
    """Sampled at contexts it never saw, the model keeps the trend: means 3 m and -m."""
    shift = fitted.context_shift_
    assert shift.shape == (2, 2)  # (1 + context) x features
    m = np.full((4000, 1), 1.5)
    samples = fitted.sample(m, random_state=1)
    np.testing.assert_allclose(samples.mean(axis=0), [4.5, -1.5], atol=0.1)
    np.testing.assert_allclose(samples.std(axis=0), [0.3, 0.2], rtol=0.2)


def test_the_shift_keeps_the_density_normalised(fitted):
    """An exact shift has log-Jacobian 0: the density still integrates to 1 at any context."""
    grid = np.linspace(-4.0, 12.0, 321)
    a, b = np.meshgrid(grid, np.linspace(-6.0, 3.0, 181), indexing="ij")
    X = np.column_stack([a.ravel(), b.ravel()])
    cell = (grid[1] - grid[0]) * (9.0 / 180)
    for m in (0.5, 1.5):
        density = np.exp(fitted.log_prob(X, np.full((len(X), 1), m)))
        assert density.sum() * cell == pytest.approx(1.0, abs=0.03)


def test_round_trip_keeps_the_shift(fitted, tmp_path):
    path = tmp_path / "maf.rsm"
    fitted.save(path)
    loaded = MAF.load(path)
    np.testing.assert_array_equal(loaded.context_shift_, fitted.context_shift_)
    X, m = trend_data(200, 3)
    np.testing.assert_allclose(loaded.log_prob(X, m), fitted.log_prob(X, m))
    np.testing.assert_allclose(loaded.sample(m, random_state=4), fitted.sample(m, random_state=4))


def test_without_decorrelate_nothing_is_shifted():
    model = MAF(n_transforms=1, hidden_features=8, training={"epochs": 1}, verbose=False)
    model.fit(*trend_data(500, 1))
    assert model.context_shift_ is None


def test_decorrelate_needs_a_context():
    X, _ = trend_data(500, 2)
    with pytest.raises(ValueError, match="decorrelate=True needs a context"):
        decorrelated().fit(X)
