"""Discovery significance and CLs limits through pyhf, and the fast path's agreement with pyhf."""

import numpy as np
import pyhf
import pytest

from analysis.regions import Window
from analysis.stats.dijet import dijet_bin_integrals, fit_dijet, fixed_width_edges
from analysis.stats.inference import (
    _toys_supported,
    discovery_significance,
    fast_discovery_significance,
    upper_limit,
)
from analysis.stats.models import build_window_model, gaussian_signal

EDGES = fixed_width_edges(2.6, 6.0)
SHAPE = np.array([0.0, 7.88, 5.25, 1.22])
WINDOW = Window(3.3, 3.7)
IN_SR = WINDOW.bins(EDGES).sr


def window_model(signal: float, seed: int, n_events: float = 2e5, staterror: float = 0.0):
    params = SHAPE.copy()
    params[0] = np.log(n_events / dijet_bin_integrals(EDGES, SHAPE).sum())
    mean = dijet_bin_integrals(EDGES, params) + signal * gaussian_signal(EDGES, 3.5, 0.05)
    counts = np.random.default_rng(seed).poisson(mean).astype(float)
    fit = fit_dijet(counts, EDGES, ~IN_SR, 4)
    return build_window_model(counts, EDGES, WINDOW, fit, staterror=staterror * np.sqrt(mean))


@pytest.mark.parametrize(
    ("signal", "seed", "staterror"),
    [(0.0, 1, 0.0), (-300.0, 2, 0.0), (500.0, 3, 0.0), (1500.0, 4, 0.0), (500.0, 5, 0.5)],
)
def test_fast_path_matches_pyhf(signal, seed, staterror):
    model = window_model(signal, seed, staterror=staterror)
    slow, fast = discovery_significance(model), fast_discovery_significance(model)
    assert fast.signed_significance == pytest.approx(slow.signed_significance, abs=2e-3)
    assert fast.p_value == pytest.approx(slow.p_value, rel=2e-3, abs=1e-6)
    assert fast.signal_yield == pytest.approx(slow.signal_yield, abs=2e-3 * slow.signal_yield_error)
    assert slow.method == "pyhf-asymptotics"
    assert fast.method == "fast-asymptotics"


def test_large_injected_signal_is_discovered_with_its_yield():
    """3000 injected events: Z > 5 and the fitted yield within 3 sigma (Wald) of the injection.

    The sideband fit absorbs the Gaussian tails outside the window, so the yield is biased
    low by a fraction of its uncertainty; 3 sigma covers it.
    """
    result = discovery_significance(window_model(3000.0, seed=7))
    assert result.significance > 5
    assert result.p_value == pytest.approx(pyhf.tensorlib.normal_cdf(-result.significance))
    assert abs(result.signal_yield - 3000.0) < 3 * result.signal_yield_error


def test_deficit_gives_p_one_half_and_negative_signed_significance():
    result = discovery_significance(window_model(-1500.0, seed=8))
    assert result.p_value == pytest.approx(0.5)
    assert result.significance == 0.0
    assert result.signed_significance < -2
    assert result.mu_hat < 0


def test_upper_limit_is_where_cls_crosses_the_level():
    model = window_model(0.0, seed=9)
    limit = upper_limit(model, level=0.05)
    assert limit.observed > 0
    assert list(limit.expected) == sorted(limit.expected)
    pdf = model.model(poi_bounds=(0.0, model.poi_bounds[1]))
    cls = pyhf.infer.hypotest(limit.mu_observed, model.data(pdf), pdf, test_stat="qtilde")
    assert float(cls) == pytest.approx(0.05, abs=2e-3)
    # Background only: the observed limit lies inside the expected +-2 sigma band.
    assert limit.expected[0] < limit.observed < limit.expected[4]


def test_limit_grows_with_an_injected_signal():
    quiet = upper_limit(window_model(0.0, seed=10))
    loud = upper_limit(window_model(2000.0, seed=10))
    assert loud.observed > quiet.observed + 1000


def test_toy_based_calculator_fails_clearly_when_numpy_breaks_pyhf():
    model = window_model(0.0, seed=11)
    if _toys_supported():
        result = discovery_significance(model, calctype="toybased", ntoys=100)
        assert 0.0 <= result.p_value <= 1.0
    else:
        with pytest.raises(NotImplementedError, match="NumPy"):
            discovery_significance(model, calctype="toybased")


def test_bad_arguments():
    model = window_model(0.0, seed=12)
    with pytest.raises(ValueError, match="calctype"):
        discovery_significance(model, calctype="bayesian")
    with pytest.raises(ValueError, match="level"):
        upper_limit(model, level=1.5)
