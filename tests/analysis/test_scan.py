"""Window x efficiency scans: selection, calibration on background only, bump finding, sculpting."""

import json

import numpy as np
import pytest
from scipy import stats

from analysis.regions import Window
from analysis.stats.dijet import fixed_width_edges, sample_dijet
from analysis.stats.scan import (
    ScanConfig,
    efficiency_flatness,
    scan,
    scan_spectra,
    sculpting_check,
    window_fit,
)
from analysis.stats.selection import ReferenceScores, select_spectra

EDGES = fixed_width_edges(2.6, 6.0)
SHAPE = np.array([0.0, 7.88, 5.25, 1.22])
WINDOWS = [(round(c - 0.2, 1), round(c + 0.2, 1)) for c in np.arange(3.0, 4.61, 0.1)]


def background(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Dijet-shaped mjj with scores independent of mjj."""
    rng = np.random.default_rng(seed)
    return sample_dijet(n, SHAPE, EDGES[0], EDGES[-1], rng), rng.random(n)


SIGNAL_WIDTH = 0.1  # TeV; the +-0.2 TeV windows then hold 95% of the bump


def with_signal(n_bkg: int, n_sig: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background plus a 3.5 TeV Gaussian bump whose scores are all above 0.99."""
    mjj, scores = background(n_bkg, seed)
    rng = np.random.default_rng(seed + 1000)
    sig_mjj = rng.normal(3.5, SIGNAL_WIDTH, n_sig)
    sig_scores = 1.0 - 0.01 * rng.random(n_sig)
    label = np.r_[np.zeros(n_bkg, bool), np.ones(n_sig, bool)]
    return np.r_[mjj, sig_mjj], np.r_[scores, sig_scores], label


def test_selection_keeps_the_efficiency_of_each_signal_region_and_nests():
    mjj, scores = background(100_000, seed=1)
    spectra = select_spectra(mjj, scores, WINDOWS[:3], EDGES, (1.0, 0.1, 0.01))
    assert spectra.counts.shape == (3, 3, EDGES.size - 1)
    np.testing.assert_array_equal(spectra.counts[:, 0], np.broadcast_to(spectra.inclusive, (3, 34)))
    assert np.all(spectra.counts[:, 2] <= spectra.counts[:, 1])
    for w, (low, high) in enumerate(WINDOWS[:3]):
        in_sr = (mjj >= low) & (mjj < high)
        for e, eff in enumerate(spectra.efficiencies):
            passed = np.mean(scores[in_sr] > spectra.thresholds[w, e])
            assert passed == pytest.approx(eff, abs=1.0 / in_sr.sum())


def test_each_window_can_bring_its_own_scores():
    mjj, scores = background(50_000, seed=2)
    per_window = np.stack([scores, 1.0 - scores])
    windows = [Window(3.3, 3.7), (3.4, 3.8)]
    spectra = select_spectra(mjj, per_window, windows, EDGES, (1.0, 0.1))
    assert spectra.thresholds[0, 1] != spectra.thresholds[1, 1]
    assert spectra.windows == (Window(3.3, 3.7), Window(3.4, 3.8))


def test_sideband_range_of_window_objects_limits_the_fit():
    mjj, scores = background(200_000, seed=3)
    window = Window(3.3, 3.7, sideband_width=0.4)
    spectra = select_spectra(mjj, scores, [window], EDGES, (1.0,))
    centres = 0.5 * (EDGES[1:] + EDGES[:-1])
    np.testing.assert_allclose(
        centres[spectra.bins(0).fit], [2.95, 3.05, 3.15, 3.25, 3.75, 3.85, 3.95, 4.05]
    )
    result = scan_spectra(spectra, ScanConfig(efficiencies=(1.0,), n_params=3))
    assert result.fit_valid.all()
    # the scan's background prediction covers the fit range and nothing else
    np.testing.assert_array_equal(np.isfinite(result.expected[0, 0]), spectra.bins(0).fit_range)


@pytest.mark.parametrize(
    ("mjj", "scores", "match"),
    [
        (np.r_[np.nan, 3.5, 3.6], np.zeros(3), "1 events have NaN/inf mjj"),
        (np.array([3.5, 3.6, 3.4]), np.r_[0.1, np.inf, np.nan], "2 NaN/inf scores"),
        (np.array([3.5, 3.6]), np.zeros(3), "number of events"),
        (np.full(50, 3.5), np.zeros(50), "selects less than one"),
    ],
)
def test_bad_events_raise(mjj, scores, match):
    with pytest.raises(ValueError, match=match):
        select_spectra(mjj, scores, [(3.3, 3.7)], EDGES, (1.0, 0.01))


def test_bad_windows_and_config_raise():
    mjj, scores = background(1000, seed=4)
    with pytest.raises(ValueError, match="outside the binning"):
        select_spectra(mjj, scores, [(5.8, 6.4)], EDGES)
    with pytest.raises(ValueError, match="scores for 2 windows"):
        select_spectra(mjj, np.stack([scores, scores]), WINDOWS[:3], EDGES)
    with pytest.raises(ValueError, match="efficiencies"):
        select_spectra(mjj, scores, WINDOWS[:1], EDGES, (1.0, 1.5))
    spectra = select_spectra(mjj, scores, WINDOWS[:1], EDGES, (1.0,))
    with pytest.raises(ValueError, match="method"):
        scan_spectra(spectra, ScanConfig(method="toys"))


def test_background_only_local_p_values_are_uniform():
    """200 independent background-only toys, one window, two efficiencies: KS test p > 0.01.

    The signed significance is N(0, 1) under background only, so 1 - Phi(Z) must be uniform
    (the one-sided q0 p-value equals it clipped at 0.5).
    """
    config = ScanConfig(efficiencies=(1.0, 0.1))
    signed, p_values = [], []
    for seed in range(200):
        mjj, scores = background(30_000, seed=100 + seed)
        result = scan(mjj, scores, [(3.3, 3.7)], EDGES, config)
        assert result.fit_valid.all()
        signed.append(result.signed_significances[0])
        p_values.append(result.p_values[0])
    signed, p_values = np.array(signed), np.array(p_values)
    for e in range(2):
        assert stats.kstest(stats.norm.sf(signed[:, e]), "uniform").pvalue > 0.01
    np.testing.assert_allclose(p_values, np.minimum(stats.norm.sf(signed), 0.5), rtol=1e-9)


@pytest.fixture(scope="module")
def bump_scan():
    mjj, scores, label = with_signal(300_000, 800, seed=5)
    config = ScanConfig(resolution=SIGNAL_WIDTH / 3.5)
    return mjj, scores, label, scan(mjj, scores, WINDOWS, EDGES, config)


def test_injected_bump_is_found_at_its_mass_with_its_yield(bump_scan):
    """Best cell within 0.1 TeV of 3.5 TeV, Z > 5, and the fitted yield within 3 sigma (Wald)
    of the number of injected events passing that cell's threshold.

    (With a resolution comparable to the window half-width, signal leaking into the masked
    sidebands biases the yield low: about -15% for sigma = 0.175 TeV and +-0.2 TeV windows.)
    """
    _, scores, label, result = bump_scan
    w, e = result.best
    centre = result.windows[w].centre
    assert abs(centre - 3.5) <= 0.1 + 1e-9
    assert result.max_significance > 5
    passing = np.sum(label & (scores > result.thresholds[w, e]))
    sigma = abs(result.signal_yields[w, e]) / result.signed_significances[w, e]
    assert abs(result.signal_yields[w, e] - passing) < 3 * sigma
    assert result.failed_fraction == 0.0


def test_scan_result_serialises_to_strict_json(bump_scan):
    payload = bump_scan[3].to_dict()
    text = json.dumps(payload, allow_nan=False)
    assert json.loads(text)["best"]["window"] == bump_scan[3].best[0]
    assert payload["thresholds"][0][0] is None  # efficiency 1.0 has no threshold


def test_pyhf_and_fast_scans_agree():
    mjj, scores, _ = with_signal(100_000, 300, seed=6)
    windows = [(3.3, 3.7), (3.9, 4.3)]
    fast = scan(mjj, scores, windows, EDGES, ScanConfig(efficiencies=(1.0, 0.1)))
    slow = scan(mjj, scores, windows, EDGES, ScanConfig(efficiencies=(1.0, 0.1), method="pyhf"))
    np.testing.assert_allclose(fast.signed_significances, slow.signed_significances, atol=2e-3)
    assert slow.config.method == "pyhf"


def test_cut_on_uncorrelated_feature_does_not_sculpt():
    mjj, scores = background(200_000, seed=7)
    result = sculpting_check(mjj, scores, EDGES, efficiency=0.1)
    assert result.p_value > 0.01
    assert not result.sculpted
    assert result.mean_efficiency == pytest.approx(0.1, abs=0.002)


def test_cut_on_correlated_feature_is_reported_as_sculpting():
    mjj, _ = background(200_000, seed=8)
    correlated = mjj + np.random.default_rng(9).normal(0.0, 0.5, mjj.size)
    result = sculpting_check(mjj, correlated, EDGES, efficiency=0.1)
    assert result.sculpted
    assert result.p_value < 1e-6
    spectra = select_spectra(mjj, correlated, [(3.3, 3.7)], EDGES, (1.0, 0.1))
    in_scan = scan_spectra(spectra, ScanConfig(efficiencies=(1.0, 0.1)), check_sculpting=True)
    np.testing.assert_array_equal(in_scan.sculpted, [[False, True]])


def test_efficiency_flatness_bad_input():
    with pytest.raises(ValueError, match="between 0 and the inclusive"):
        efficiency_flatness(np.array([5.0, 1.0]), np.array([4.0, 2.0]))
    with pytest.raises(ValueError, match="1 NaN/inf"):
        efficiency_flatness(np.array([1.0, np.nan]), np.array([4.0, 2.0]))
    with pytest.raises(ValueError, match="no non-empty bins"):
        efficiency_flatness(np.zeros(3), np.zeros(3))


def test_reference_calibration_removes_the_bump_a_signal_region_classifier_sculpts():
    """Background scores higher inside the SR than outside (a classifier trained in the SR only).

    Fitting the selected sidebands then predicts too little in the SR: a fake bump. With the
    cut's efficiency measured on a background reference in the SR and the inclusive fit, the
    background-only data show no excess; a real bump on top is still found.
    """
    mjj, scores = background(400_000, seed=11)
    window = Window(3.3, 3.7, sideband_width=0.6)
    in_sr = (mjj >= 3.3) & (mjj < 3.7)
    scores = scores + 0.05 * in_sr
    rng = np.random.default_rng(12)
    ref_mjj = rng.choice(mjj[in_sr], 4 * int(in_sr.sum()))
    ref_scores = rng.random(ref_mjj.size) + 0.05
    effs = (1.0, 0.1, 0.01)
    sculpted = scan_spectra(select_spectra(mjj, scores, [window], EDGES, effs))
    assert sculpted.max_significance > 5
    reference = [ReferenceScores(ref_mjj, ref_scores)]
    spectra = select_spectra(mjj, scores, [window], EDGES, effs, references=reference)
    calibrated = scan_spectra(spectra)
    assert calibrated.fit_valid.all()
    assert calibrated.max_significance < 3
    sig_mjj = rng.normal(3.5, SIGNAL_WIDTH, 300)
    with_bump = select_spectra(
        np.r_[mjj, sig_mjj],
        np.r_[scores, np.full(300, 2.0)],
        [window],
        EDGES,
        effs,
        references=reference,
    )
    assert scan_spectra(with_bump).max_significance > 5


def test_a_cell_with_too_few_sideband_events_is_not_tested():
    """A 4-parameter fit of ~20 sideband events could put a bump anywhere: the cell is skipped."""
    mjj, scores = background(3_000, seed=5)
    window = Window(3.3, 3.7, sideband_width=0.6)
    spectra = select_spectra(mjj, scores, [window], EDGES, (1.0, 0.01))
    result = scan_spectra(spectra, ScanConfig(min_events_per_parameter=10))
    assert result.fit_valid[0, 0]
    assert not result.fit_valid[0, 1]
    assert np.isnan(result.significances[0, 1])


def test_a_window_without_a_sideband_below_its_signal_region_is_not_tested():
    """At the edge of the data the fit would extrapolate into the SR: the cells are skipped."""
    mjj, scores = background(200_000, seed=6)
    edge, inside = Window(2.6, 3.0, sideband_width=0.4), Window(3.0, 3.4, sideband_width=0.4)
    spectra = select_spectra(mjj, scores, [edge, inside], EDGES, (1.0, 0.1))
    result = scan_spectra(spectra, ScanConfig(efficiencies=(1.0, 0.1), n_params=3))
    assert not result.fit_valid[0].any()
    assert np.isnan(result.significances[0]).all()
    assert result.fit_valid[1].all()
    with pytest.raises(ValueError, match=r"no sideband bin below the signal region 2\.6-3 TeV"):
        window_fit(spectra.inclusive, EDGES, edge, ScanConfig())
