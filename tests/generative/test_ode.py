"""The ODE integrators and the change-of-variables likelihood against analytic flows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.linalg import expm
from scipy.stats import multivariate_normal

from generative.ode import (
    EXACT_DIVERGENCE_MAX_DIM,
    ODESolver,
    integrate,
    log_likelihood,
    resolve_divergence,
)

MU, SCALE = 1.5, 0.4


def _gaussian_path(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Velocity of x_t = (1 + (SCALE - 1) t) z + MU t, which carries N(0, 1) to N(MU, SCALE^2)."""
    return (SCALE - 1.0) * (x - MU * t) / (1.0 + (SCALE - 1.0) * t) + MU


def _analytic_1d(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((x[:, 0] - MU) / SCALE) ** 2 - math.log(SCALE) - 0.5 * math.log(2 * math.pi)


def _linear_field(dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random, non-symmetric A (so Hutchinson's estimate has variance) and offset b."""
    rng = np.random.default_rng(seed)
    return 0.3 * rng.normal(size=(dim, dim)), rng.normal(size=dim)


def _linear_flow_density(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log density at t = 1 of dx/dt = A x + b started from N(0, I) at t = 0."""
    flow = expm(a)
    mean = np.linalg.solve(a, (flow - np.eye(len(b))) @ b)
    return multivariate_normal(mean, flow @ flow.T).logpdf(x)


def _linear_velocity(a: np.ndarray, b: np.ndarray):
    at, bt = torch.as_tensor(a.T), torch.as_tensor(b)
    return lambda t, x: x @ at + bt


# Global error of an order-p method with n steps is C / n^p; float64 keeps round-off far below.
@pytest.mark.parametrize(
    ("method", "steps", "tolerance"),
    [("euler", 200, 5e-3), ("midpoint", 20, 1e-3), ("rk4", 10, 1e-5), ("dopri5", 1, 1e-5)],
)
def test_likelihood_of_the_gaussian_path_is_analytic(method, steps, tolerance):
    solver = ODESolver(method, steps, rtol=1e-8, atol=1e-8)
    x = torch.linspace(-1.0, 3.0, 41, dtype=torch.float64)[:, None]
    with torch.no_grad():
        lp = log_likelihood(_gaussian_path, x, 1.0, 0.0, solver)
    np.testing.assert_allclose(lp.numpy(), _analytic_1d(x).numpy(), atol=tolerance)


@pytest.mark.parametrize(("method", "order"), [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_fixed_step_methods_converge_at_their_order(method, order):
    x = torch.linspace(-1.0, 3.0, 11, dtype=torch.float64)[:, None]
    errors = []
    for steps in (8, 16):
        with torch.no_grad():
            lp = log_likelihood(_gaussian_path, x, 1.0, 0.0, ODESolver(method, steps))
        errors.append((lp - _analytic_1d(x)).abs().max().item())
    # Halving the step divides the error by 2^order, up to higher-order terms (within 30%).
    assert errors[0] / errors[1] == pytest.approx(2.0**order, rel=0.3)


@pytest.mark.parametrize("method", ["midpoint", "rk4", "dopri5"])
def test_integration_maps_noise_to_data_and_back(method):
    z = torch.randn(100, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    solver = ODESolver(method, 20, rtol=1e-9, atol=1e-9)
    x = integrate(_gaussian_path, z, 0.0, 1.0, solver)
    # The path is straight, so every method is exact up to round-off / tolerance.
    np.testing.assert_allclose(x.numpy(), (SCALE * z + MU).numpy(), atol=1e-7)
    np.testing.assert_allclose(
        integrate(_gaussian_path, x, 1.0, 0.0, solver).numpy(), z.numpy(), atol=1e-7
    )


@pytest.mark.parametrize("dim", [1, 3, 8])
def test_exact_divergence_matches_the_linear_flow(dim):
    a, b = _linear_field(dim, seed=dim)
    x = np.random.default_rng(1).normal(size=(200, dim)) + 0.5
    with torch.no_grad():
        lp = log_likelihood(
            _linear_velocity(a, b),
            torch.as_tensor(x),
            1.0,
            0.0,
            ODESolver("rk4", 50),
            divergence="exact",
        )
    # rk4 with 50 steps approximates exp(A) to ~1e-9 for |A| ~ 1.
    np.testing.assert_allclose(lp.numpy(), _linear_flow_density(a, b, x), atol=1e-6)


def test_hutchinson_is_unbiased_with_the_predicted_variance():
    dim = 12
    a, b = _linear_field(dim, seed=7)
    x = np.random.default_rng(2).normal(size=(20_000, dim))
    exact = _linear_flow_density(a, b, x)
    with torch.no_grad():
        lp = log_likelihood(
            _linear_velocity(a, b),
            torch.as_tensor(x),
            1.0,
            0.0,
            ODESolver("rk4", 20),
            generator=torch.Generator().manual_seed(3),
        ).numpy()
    # For a constant Jacobian A the estimate is exact - eps^T A eps + tr(A), with Rademacher
    # eps: mean 0, variance 2 sum_{i != j} S_ij^2 where S is the symmetric part of A.
    sym = 0.5 * (a + a.T)
    variance = 2.0 * (np.sum(sym**2) - np.sum(np.diag(sym) ** 2))
    error = lp - exact
    standard_error = math.sqrt(variance / len(x))
    assert abs(error.mean()) < 4.0 * standard_error
    # The sample variance of 20k draws has a relative error of about 1% (kurtosis near 3), so
    # 5% is a 5 sigma bound.
    assert error.var() == pytest.approx(variance, rel=0.05)


def test_more_probes_reduce_the_variance_and_a_seed_fixes_them():
    dim = 12
    a, b = _linear_field(dim, seed=7)
    x = torch.as_tensor(np.random.default_rng(2).normal(size=(4_000, dim)))
    velocity, solver = _linear_velocity(a, b), ODESolver("rk4", 10)

    def estimate(n_probes: int, seed: int) -> np.ndarray:
        with torch.no_grad():
            return log_likelihood(
                velocity,
                x,
                1.0,
                0.0,
                solver,
                divergence="hutchinson",
                n_probes=n_probes,
                generator=torch.Generator().manual_seed(seed),
            ).numpy()

    exact = _linear_flow_density(a, b, x.numpy())
    one, sixteen = (estimate(k, seed=0) - exact for k in (1, 16))
    # Variance falls as 1/k; the ratio of two sample variances of 4k draws has a relative error
    # of about 3%, so 15% is a 5 sigma bound.
    assert one.var() / sixteen.var() == pytest.approx(16.0, rel=0.15)
    np.testing.assert_array_equal(estimate(1, seed=5), estimate(1, seed=5))
    assert not np.array_equal(estimate(1, seed=5), estimate(1, seed=6))


def test_divergence_choice_by_dimension():
    assert resolve_divergence("auto", EXACT_DIVERGENCE_MAX_DIM) == "exact"
    assert resolve_divergence("auto", EXACT_DIVERGENCE_MAX_DIM + 1) == "hutchinson"
    assert resolve_divergence("exact", 368) == "exact"
    with pytest.raises(ValueError, match="divergence must be"):
        resolve_divergence("trace", 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "rk45"}, "ODE solver must be one of"),
        ({"method": "rk4", "steps": 0}, "steps must be at least 1"),
        ({"method": "dopri5", "rtol": 0.0}, "tolerances must be positive"),
    ],
)
def test_invalid_solver_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ODESolver(**kwargs)


def test_empty_interval_is_rejected():
    with pytest.raises(ValueError, match="interval is empty"):
        integrate(_gaussian_path, torch.zeros(3, 1), 0.5, 0.5)
