"""Conditional flow matching: moments in context bins, likelihood against the analytic Gaussian.

Also holds the conditional-Gaussian task and the moment check that the diffusion, GAN and VAE
tests import, so every model is judged on the same distribution by the same rule.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from generative import DensityModel
from generative.flow_matching import FlowMatching

#: context values at which the conditional moments are checked (centres of four equal bins)
CONTEXTS = (-0.75, -0.25, 0.25, 0.75)


def true_moments(c: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (n, 2) of x | c: the mean moves 3 and 1.5 sigma per unit c."""
    c = np.asarray(c, dtype=np.float64).reshape(-1, 1)
    return np.hstack([2.0 * c, -c]), np.hstack([np.full_like(c, 0.5), 0.6 + 0.3 * c])


def conditional_gaussian(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x ~ N(mean(c), diag(std(c)^2)) with c ~ U(-1, 1): both moments depend on the context."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1.0, 1.0, size=(n, 1))
    mean, std = true_moments(c)
    return mean + std * rng.normal(size=(n, 2)), c


def assert_conditional_moments(
    model: DensityModel, mean_tol: float, std_tol: float, n: int = 3_000
) -> None:
    """Means within `mean_tol` conditional sigmas and stds within `std_tol` (relative).

    With 3k samples per context the statistical errors are 0.018 sigma on a mean and 1.3% on a
    standard deviation, several times below every tolerance used, so the tolerances measure the
    model's bias; a model that ignored the context would miss the means by up to 3 sigma.
    """
    for value in CONTEXTS:
        samples = model.sample(np.full((n, 1), value), random_state=1)
        mean, std = (m[0] for m in true_moments(value))
        pulls = (samples.mean(axis=0) - mean) / std
        assert np.all(np.abs(pulls) < mean_tol), f"c={value}: mean pulls {pulls}"
        ratio = samples.std(axis=0) / std - 1.0
        assert np.all(np.abs(ratio) < std_tol), f"c={value}: relative std errors {ratio}"


FAST = {"hidden_features": 64, "n_blocks": 2, "random_state": 0, "verbose": False}
TRAINING = {"epochs": 30, "batch_size": 256, "learning_rate": 3e-3, "patience": 8}
#: a third of the optimiser steps, enough for the moments (worst errors 0.03 sigma and 3%)
QUICK_TRAINING = {**TRAINING, "epochs": 20, "batch_size": 512}


@pytest.fixture(scope="module")
def fitted() -> FlowMatching:
    x, c = conditional_gaussian(10_000, seed=1)
    # A small sigma_min so that option meets the statistical test too; the likelihood tests
    # below use the default rectified path (sigma_min = 0).
    model = FlowMatching(
        sigma_min=0.05, steps=20, preprocessing="standard", training=QUICK_TRAINING, **FAST
    )
    return model.fit(x, c)


def test_conditional_moments_in_context_bins(fitted):
    # Flow matching regresses the exact path velocity and its learned paths are nearly straight
    # (20 midpoint steps suffice): means within 0.1 sigma, widths within 10%.
    assert_conditional_moments(fitted, mean_tol=0.1, std_tol=0.1)


def test_solvers_agree_from_the_same_noise(fitted):
    context = np.linspace(-1.0, 1.0, 500)[:, None]
    model = copy.deepcopy(fitted)
    reference = model.set_params(solver="dopri5").sample(context, random_state=3)
    for solver, steps in (("midpoint", 50), ("rk4", 20)):
        samples = model.set_params(solver=solver, steps=steps).sample(context, random_state=3)
        # Near-straight learned paths: a few hundredths at most, far below the data's 0.5 width.
        np.testing.assert_allclose(samples, reference, atol=0.05)


def test_hutchinson_log_prob_agrees_with_exact_in_expectation(fitted):
    x, c = conditional_gaussian(2_000, seed=5)
    model = copy.deepcopy(fitted).set_params(log_prob_solver="rk4", log_prob_steps=20)
    exact = model.log_prob(x, c)
    estimate = model.set_params(divergence="hutchinson").log_prob(x, c)
    np.testing.assert_array_equal(estimate, model.log_prob(x, c))  # probes seeded by the model
    error = estimate - exact
    assert error.std() > 0
    assert abs(error.mean()) < 4.0 * error.std() / np.sqrt(len(error))


MEAN = np.array([1.0, -0.5])
COV = np.array([[1.0, 0.3], [0.3, 0.25]])


def correlated_gaussian(n: int, seed: int) -> np.ndarray:
    """Events of the unconditional 2-D Gaussian N(MEAN, COV) for the likelihood tests."""
    return np.random.default_rng(seed).multivariate_normal(MEAN, COV, size=n)


def assert_log_prob_matches_gaussian(model: DensityModel) -> None:
    """Model log-density within a few hundredths of a nat of N(MEAN, COV) on its own events.

    After brief training the KL divergence is about 0.01 nats, so errors are of that size; a
    wrong sign or a missing log-Jacobian in the likelihood would cost of order one nat.
    """
    x = correlated_gaussian(1_000, seed=3)
    error = model.log_prob(x) - multivariate_normal(MEAN, COV).logpdf(x)
    assert abs(error.mean()) < 0.05
    assert np.mean(np.abs(error)) < 0.1


def assert_density_integrates_to_one(model: DensityModel) -> None:
    """exp(log_prob) on a grid of +-6 sigma integrates to 1 within 2%.

    The change of variables conserves probability whatever the training quality, so this
    checks the likelihood machinery itself (the trapezoid error on 81 x 81 points is < 0.1%).
    """
    axes = [
        np.linspace(m - 6 * s, m + 6 * s, 81)
        for m, s in zip(MEAN, np.sqrt(np.diag(COV)), strict=True)
    ]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    density = np.exp(model.log_prob(mesh)).reshape(81, 81)
    integral = np.trapezoid(np.trapezoid(density, axes[1], axis=1), axes[0])
    assert integral == pytest.approx(1.0, abs=0.02)


@pytest.fixture(scope="module")
def gaussian_model() -> FlowMatching:
    model = FlowMatching(
        preprocessing="none", log_prob_solver="rk4", log_prob_steps=20, training=TRAINING, **FAST
    )
    return model.fit(correlated_gaussian(5_000, seed=2))


def test_log_prob_matches_the_analytic_gaussian(gaussian_model):
    assert_log_prob_matches_gaussian(gaussian_model)


def test_density_integrates_to_one(gaussian_model):
    assert_density_integrates_to_one(gaussian_model)


def test_unconditional_sampling_by_count(gaussian_model):
    samples = copy.deepcopy(gaussian_model).set_params(steps=20).sample(20_000, random_state=0)
    assert samples.shape == (20_000, 2)
    np.testing.assert_allclose(samples.mean(axis=0), MEAN, atol=0.05)
    np.testing.assert_allclose(np.cov(samples.T), COV, atol=0.05)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("sigma_min", 1.5, "sigma_min must lie in"),
        ("solver", "leapfrog", "ODE solver must be one of"),
        ("time_embedding", "wavelet", "time_embedding must be"),
    ],
)
def test_invalid_option_is_named(option, value, message):
    x, c = conditional_gaussian(200, seed=0)
    model = FlowMatching(**{option: value}, training={"epochs": 1}, verbose=False)
    with pytest.raises(ValueError, match=message):
        model.fit(x, c)
