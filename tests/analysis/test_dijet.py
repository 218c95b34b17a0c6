"""Dijet-function fits: accuracy, calibrated uncertainties, failure detection, bad input."""

import itertools

import numpy as np
import pytest
from scipy import integrate, stats

from analysis.stats.dijet import (
    dijet_bin_integrals,
    dijet_density,
    fit_dijet,
    fixed_width_edges,
    ftest_select,
    resolution_edges,
    sample_dijet,
)

EDGES = fixed_width_edges(2.6, 6.0)
SHAPE = np.array([0.0, 7.88, 5.25, 1.22])  # LHCO-like 4-parameter dijet shape
SR = (EDGES[:-1] >= 3.3 - 1e-9) & (EDGES[1:] <= 3.7 + 1e-9)


def truth(n_events: float, shape: np.ndarray = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """Parameters normalised to `n_events` in EDGES, and the expected counts per bin."""
    params = shape.copy()
    params[0] = np.log(n_events / dijet_bin_integrals(EDGES, shape).sum())
    return params, dijet_bin_integrals(EDGES, params)


def test_fixed_width_edges_snap_to_the_width():
    edges = fixed_width_edges(2.63, 5.97, 0.1)
    np.testing.assert_allclose(edges[[0, -1]], [2.6, 6.0])
    np.testing.assert_allclose(np.diff(edges), 0.1)


def test_resolution_edges_grow_with_mass():
    edges = resolution_edges(2.5, 6.0, 0.05)
    np.testing.assert_allclose(np.diff(edges) / edges[:-1], 0.05)
    assert edges[0] == 2.5
    assert edges[-1] >= 6.0


def test_bin_integrals_match_quadrature():
    params, _ = truth(1e5)
    expected = [
        integrate.quad(dijet_density, lo, hi, args=(params,))[0]
        for lo, hi in itertools.pairwise(EDGES)
    ]
    np.testing.assert_allclose(dijet_bin_integrals(EDGES, params), expected, rtol=1e-6)


def test_sample_dijet_follows_the_bin_integrals():
    params, _ = truth(1.0)
    mjj = sample_dijet(200_000, params, EDGES[0], EDGES[-1], random_state=3)
    counts, _ = np.histogram(mjj, EDGES)
    expected = dijet_bin_integrals(EDGES, params)
    expected *= counts.sum() / expected.sum()
    keep = expected > 5
    chi2 = np.sum((counts[keep] - expected[keep]) ** 2 / expected[keep])
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 0.001


@pytest.mark.parametrize("n_params", [3, 4, 5])
def test_fit_converges_with_a_positive_definite_covariance(n_params):
    _, mu = truth(2e5)
    counts = np.random.default_rng(n_params).poisson(mu)
    fit = fit_dijet(counts, EDGES, ~SR, n_params)
    assert fit.valid, fit.message
    assert fit.params.shape == (n_params,)
    np.testing.assert_allclose(fit.covariance, fit.covariance.T, rtol=1e-8, atol=0)
    assert np.all(np.linalg.eigvalsh(fit.covariance) > 0)
    assert fit.ndof == (~SR).sum() - n_params
    # A good fit: the deviance is chi2-distributed with ndof degrees of freedom.
    assert stats.chi2.sf(fit.deviance, fit.ndof) > 0.001


def test_sideband_fit_interpolates_with_calibrated_uncertainty():
    """Pulls of the signal-region prediction over 150 toys: mean 0 and width 1 within 0.25."""
    _, mu = truth(2e5)
    rng = np.random.default_rng(11)
    sr_edges = EDGES[np.r_[np.flatnonzero(SR), np.flatnonzero(SR)[-1] + 1]]
    pulls = []
    for _ in range(150):
        fit = fit_dijet(rng.poisson(mu), EDGES, ~SR, 4)
        assert fit.valid, fit.message
        up, down = fit.variations(sr_edges)
        sigma = np.sqrt(np.sum(((up - down).sum(axis=1) / 2) ** 2))
        pulls.append((fit.predict(sr_edges).sum() - mu[SR].sum()) / sigma)
    assert abs(np.mean(pulls)) < 0.25
    assert 0.75 < np.std(pulls) < 1.25


def test_variations_span_the_covariance():
    _, mu = truth(1e5)
    fit = fit_dijet(np.random.default_rng(2).poisson(mu), EDGES, ~SR, 4)
    up, down = fit.variations()
    assert up.shape == down.shape == (4, EDGES.size - 1)
    # Linear propagation of the covariance agrees with the eigenvector variations.
    eps = 1e-6
    jac = np.stack(
        [
            (dijet_bin_integrals(EDGES, fit.params + eps * e) - fit.predict()) / eps
            for e in np.eye(4)
        ]
    )
    cov_bins = jac.T @ fit.covariance @ jac
    half = (up - down) / 2
    scale = np.sqrt(np.outer(np.diag(cov_bins), np.diag(cov_bins)))
    # Differences relative to sigma_i sigma_j: the +-1 sigma shifts are nonlinear at the 1% level.
    assert np.max(np.abs(half.T @ half - cov_bins) / scale) < 0.02


def test_failed_fit_is_flagged_not_silent():
    counts = np.r_[np.ones(EDGES.size - 2), 1e12]
    fit = fit_dijet(counts, EDGES, None, 4)
    assert not fit.valid
    assert "did not converge" in fit.message


@pytest.mark.parametrize(
    ("counts", "match"),
    [
        (np.zeros(EDGES.size - 1), "empty"),
        (np.r_[np.nan, np.ones(EDGES.size - 2)], "1 NaN/inf"),
        (np.r_[-1.0, np.ones(EDGES.size - 2)], "negative"),
        (np.ones(EDGES.size), "bins"),
        (np.r_[np.zeros(EDGES.size - 4), 5.0, 5.0, 5.0], "too few non-empty bins"),
    ],
)
def test_bad_input_raises_clear_errors(counts, match):
    with pytest.raises(ValueError, match=match):
        fit_dijet(counts, EDGES, None, 4)


def test_bad_edges_and_orders_raise():
    with pytest.raises(ValueError, match="n_params"):
        fit_dijet(np.ones(EDGES.size - 1), EDGES, None, 6)
    with pytest.raises(ValueError, match="increasing"):
        fit_dijet(np.ones(3), np.array([3.0, 2.0, 4.0, 5.0]), None, 3)
    with pytest.raises(ValueError, match="sqrt_s"):
        fit_dijet(np.ones(3), np.array([3.0, 4.0, 5.0, 14.0]), None, 3)


def test_ftest_keeps_the_order_the_data_need():
    rng = np.random.default_rng(5)
    _, mu3 = truth(1e5, np.array([0.0, 9.0, 4.5, 0.0]))
    simple = ftest_select(rng.poisson(mu3), EDGES, ~SR)
    assert simple.n_params == 3
    # A strongly curved 5-parameter truth with many events needs more than 3 parameters.
    _, mu5 = truth(5e6, np.array([0.0, 4.0, 9.0, 2.5, 0.6]))
    curved = ftest_select(rng.poisson(mu5), EDGES, ~SR)
    assert curved.n_params > 3
    assert curved.p_values[0] < 0.05
    assert curved.fit.valid
