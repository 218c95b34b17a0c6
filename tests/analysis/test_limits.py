"""CLs upper limits per window (pyhf asymptotics) on synthetic spectra."""

import numpy as np
import pytest

from analysis.regions import Window
from analysis.stats.bias import fit_signal_yields
from analysis.stats.dijet import dijet_bin_integrals, fixed_width_edges
from analysis.stats.limits import window_limits
from analysis.stats.models import gaussian_signal
from analysis.stats.scan import ScanConfig
from analysis.stats.selection import SelectedSpectra

EDGES = fixed_width_edges(2.7, 4.7)
SHAPE = np.array([0.0, 7.88, 5.25, 1.22])
CONFIG = ScanConfig(efficiencies=(1.0, 0.1), n_params=3, resolution=0.03)
#: sidebands: everything else, the whole binning
WINDOWS = (Window(3.3, 3.7), Window(3.7, 4.1))


def spectra(signal: float, seed: int = 0) -> SelectedSpectra:
    """Inclusive and 10% selections of 50k background events, `signal` events at 3.5 TeV."""
    rng = np.random.default_rng(seed)
    mu = dijet_bin_integrals(EDGES, SHAPE)
    mu *= 50_000 / mu.sum()
    inclusive = rng.poisson(mu).astype(float)
    selected = rng.binomial(inclusive.astype(int), 0.1)
    selected = selected + rng.poisson(signal * gaussian_signal(EDGES, 3.5, CONFIG.resolution))
    counts = np.stack([np.stack([inclusive, selected])] * 2)
    thresholds = np.tile([-np.inf, 0.9], (2, 1))
    return SelectedSpectra(EDGES, WINDOWS, np.array([1.0, 0.1]), inclusive, counts, thresholds)


def test_expected_band_is_ordered_and_holds_the_background_only_observation():
    (limit, _) = window_limits(spectra(0.0), 0.1, CONFIG)
    assert limit.valid, limit.message
    assert np.all(np.diff(limit.expected) > 0)
    assert limit.expected[0] < limit.observed < limit.expected[4]
    assert limit.to_dict()["cl"] == pytest.approx(0.95)


def test_a_large_signal_is_excluded_only_above_its_yield():
    (limit, _) = window_limits(spectra(400.0), 0.1, CONFIG)
    assert limit.observed > limit.expected[4]
    # CLs covers: the 95% limit lies above the injected yield (of which ~99% is in the SR).
    assert limit.observed > 400 * 0.9


def test_median_expected_limit_follows_the_fitted_yield_uncertainty():
    """Asymptotically the median expected CLs limit is sigma * Phi^-1(1 - 0.05/2) = 1.96 sigma,
    with sigma from our own likelihood's Hessian on background-only pseudo-data: within 15%."""
    data = spectra(0.0)
    (limit, _) = window_limits(data, 0.1, CONFIG)
    rng = np.random.default_rng(1)
    mean = data.counts[0, 1]
    toys = rng.poisson(np.broadcast_to(mean, (300, mean.size))).astype(float)
    _, error = fit_signal_yields(toys, EDGES, WINDOWS[0], CONFIG)
    assert limit.expected[2] == pytest.approx(1.96 * np.nanmedian(error), rel=0.15)


def test_unusable_windows_and_unknown_efficiencies():
    limits = window_limits(spectra(0.0), 0.1, CONFIG, usable=np.array([True, False]))
    assert limits[0].valid
    assert not limits[1].valid
    assert np.isnan(limits[1].observed)
    assert "checks" in limits[1].message
    assert limits[1].to_dict()["observed"] is None
    with pytest.raises(ValueError, match=r"efficiency 0\.5 is not one of"):
        window_limits(spectra(0.0), 0.5, CONFIG)
