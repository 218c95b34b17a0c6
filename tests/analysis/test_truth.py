"""Truth of a search's cells on labelled data: selections by label, the background fitted alone."""

import json

import numpy as np
import pytest

from analysis.regions import Window
from analysis.stats.dijet import fixed_width_edges, sample_dijet
from analysis.stats.scan import ScanConfig, scan_spectra
from analysis.stats.selection import select_spectra
from analysis.truth import CELL_COUNTS, CellTruth, background_fit_bias, cell_truth

EDGES = fixed_width_edges(2.6, 6.0)
SHAPE = np.array([0.0, 7.88, 5.25, 1.22])
WINDOWS = (Window(3.3, 3.7, 0.6), Window(3.9, 4.3, 0.6))
EFFS = (1.0, 0.1, 0.01)
CONFIG = ScanConfig(efficiencies=EFFS)


def events(seed: int, sculpt: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dijet background and a 3.5 TeV bump wide enough to leak into the sidebands.

    Signal scores lie above most background scores; background scores are uniform, plus
    `sculpt` times a Gaussian bump in mjj at 3.5 TeV (a selection that prefers background events
    of the signal region).
    """
    rng = np.random.default_rng(seed)
    background = sample_dijet(200_000, SHAPE, EDGES[0], EDGES[-1], rng)
    signal_mjj = rng.normal(3.5, 0.2, 3000)
    mjj = np.r_[background, signal_mjj[(signal_mjj > EDGES[0]) & (signal_mjj < EDGES[-1])]]
    signal = np.arange(mjj.size) >= background.size
    bump = np.exp(-0.5 * ((mjj - 3.5) / 0.1) ** 2)
    scores = np.where(signal, 0.8 + 0.4 * rng.random(mjj.size), rng.random(mjj.size))
    scores = scores + sculpt * bump * ~signal
    return mjj, signal, np.broadcast_to(scores, (len(WINDOWS), mjj.size))


def truth_of(mjj, signal, scores):
    spectra = select_spectra(mjj, scores, WINDOWS, EDGES, EFFS)
    return spectra, cell_truth(mjj, signal, scores, spectra, CONFIG)


def test_the_selections_by_label_add_up_to_what_each_cell_selects():
    mjj, signal, scores = events(0)
    spectra, truth = truth_of(mjj, signal, scores)
    for w, window in enumerate(WINDOWS):
        sr, sb = window.sr_mask(mjj), window.sb_mask(mjj)
        assert truth.signal_in_sr[w] == np.sum(sr & signal)
        for e, threshold in enumerate(spectra.thresholds[w]):
            passed = scores[w] > threshold
            sr_total = truth.signal_selected_in_sr[w, e] + truth.background_selected_in_sr[w, e]
            sb_total = (
                truth.signal_selected_in_sidebands[w, e]
                + truth.background_selected_in_sidebands[w, e]
            )
            assert sr_total == np.sum(passed & sr)
            assert sb_total == np.sum(passed & sb)
    # everything passes the 100% cell
    assert truth.background_selected_in_sr[0, 0] == np.sum(WINDOWS[0].sr_mask(mjj) & ~signal)
    record = truth.to_dict()
    assert record["signal_in_sr"] == truth.signal_in_sr.tolist()
    assert len(record["background_only_fit_sr"]) == len(WINDOWS)


def test_the_background_alone_is_fitted_without_bias_by_a_selection_blind_to_mjj():
    mjj, signal, scores = events(1)
    _, truth = truth_of(mjj, signal, scores)
    true, fitted = truth.background_selected_in_sr, truth.background_only_fit_sr
    # Poisson fluctuation of the true count plus the fit's own (similar size): 4 sigma, in the
    # cells with background selected (none passes the signal window's 1% cut)
    pulls = (fitted - true) / np.sqrt(2 * true)
    assert np.all(np.abs(pulls[:, :2]) < 4), pulls
    assert abs(pulls[1, 2]) < 4, pulls


def test_signal_leaking_into_the_sidebands_raises_the_fit_above_that_of_the_background_alone():
    mjj, signal, scores = events(2)
    spectra, truth = truth_of(mjj, signal, scores)
    scan = scan_spectra(spectra, CONFIG)
    # the 10% cell of the signal's window passes hundreds of signal events in its sidebands
    assert truth.signal_selected_in_sidebands[0, 1] > 300
    excess = scan.background_sr[0, 1] - truth.background_only_fit_sr[0, 1]
    assert excess > 4 * np.sqrt(truth.background_selected_in_sr[0, 1]), excess


def test_a_selection_that_prefers_signal_region_background_shows_a_fit_below_the_truth():
    mjj, signal, scores = events(3, sculpt=0.05)
    _, truth = truth_of(mjj, signal, scores)
    true, fitted = truth.background_selected_in_sr[0, 1], truth.background_only_fit_sr[0, 1]
    # the selection sculpts a bump into the background: the sideband fit cannot see it
    assert (true - fitted) / np.sqrt(2 * true) > 5, (true, fitted)


def test_labels_or_scores_of_the_wrong_shape_are_refused():
    mjj, signal, scores = events(4)
    spectra = select_spectra(mjj, scores, WINDOWS, EDGES, EFFS)
    with pytest.raises(ValueError, match="labels like mjj"):
        cell_truth(mjj, signal[:-1], scores, spectra, CONFIG)
    with pytest.raises(ValueError, match="labels like mjj"):
        cell_truth(mjj, signal, scores[:1], spectra, CONFIG)


def test_a_truth_record_reads_back_as_it_was_written():
    mjj, signal, scores = events(5)
    _, truth = truth_of(mjj, signal, scores)
    back = CellTruth.from_dict(json.loads(json.dumps(truth.to_dict())))
    for key in ("signal_in_sr", *CELL_COUNTS, "background_only_fit_sr"):
        np.testing.assert_array_equal(getattr(back, key), getattr(truth, key))


def test_the_fit_bias_is_the_median_ratio_per_efficiency_and_shows_sculpting():
    blind = [truth_of(*events(seed))[1] for seed in (6, 7)]
    sculpted = truth_of(*events(8, sculpt=0.05))[1]
    bias = background_fit_bias(blind)
    ratios = np.concatenate([t.background_only_fit_sr / t.background_selected_in_sr for t in blind])
    assert bias[1] == pytest.approx(np.median(ratios[:, 1]))
    assert bias[1] == pytest.approx(1.0, abs=0.05)
    # the selection that keeps signal-region background: its fit falls short in that window
    assert background_fit_bias([sculpted])[1] < bias[1]
    with pytest.raises(ValueError, match="at least one"):
        background_fit_bias([])
