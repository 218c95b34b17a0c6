"""The reference-mismodelling nuisance: background-only local Z stays N(0, 1) with a template
whose cut efficiency is off, the uncorrected scan would claim an excess, and a large signal is
still found. Toys of the whole selection -> scan path, with scores independent of mjj."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.regions import Window
from analysis.stats.dijet import fixed_width_edges, sample_dijet
from analysis.stats.mismodelling import VARIATION, control_ratios, control_variation
from analysis.stats.null import pseudo_scan
from analysis.stats.scan import ScanConfig, scan_spectra
from analysis.stats.selection import ReferenceScores, select_spectra
from anomaly.results import ControlSample

EDGES = fixed_width_edges(2.6, 6.0)
SHAPE = np.array([0.0, 7.88, 5.25, 1.22])
WINDOW = Window(3.3, 3.7, sideband_width=0.6)
EFFICIENCIES = (0.1, 0.01)


def template_scores(n: int, bias: float, rng: np.random.Generator) -> np.ndarray:
    """Scores of a template whose every cut passes 1 / (1 + bias) of the data's fraction."""
    scores = rng.random(n)
    return np.where(rng.random(n) < 1.0 / (1.0 + bias), scores, 0.0)


def toy(seed: int, bias: float, n_signal: int = 0, control: bool = True):
    """Selected spectra of one background-only toy (plus `n_signal` events scoring 1-2)."""
    rng = np.random.default_rng(seed)
    mjj = sample_dijet(150_000, SHAPE, EDGES[0], EDGES[-1], rng)
    scores = rng.random(mjj.size)
    mjj = np.r_[mjj, rng.normal(3.5, 0.1, n_signal)]
    scores = np.r_[scores, 1.0 + rng.random(n_signal)]
    in_sr = WINDOW.sr_mask(mjj)
    n_sr = int(in_sr.sum())
    ref_mjj, ref_scores = rng.choice(mjj[in_sr], 4 * n_sr), template_scores(4 * n_sr, bias, rng)
    # held-out sideband data (40% of the SR count) and the template model at their masses
    n_control = int(0.4 * n_sr)
    sample = ControlSample(rng.random(n_control), template_scores(n_control, bias, rng))
    reference = ReferenceScores(ref_mjj, ref_scores, sample if control else None)
    return select_spectra(mjj, scores, [WINDOW], EDGES, EFFICIENCIES, references=[reference])


def signed_z(seeds, bias: float, control: bool = True) -> np.ndarray:
    """(toys, efficiencies) signed local Z of the window."""
    return np.array(
        [scan_spectra(toy(s, bias, control=control)).signed_significances[0] for s in seeds]
    )


@pytest.mark.parametrize("bias", [0.0, 0.3])
def test_background_only_local_z_is_standard_normal_with_the_nuisance(bias):
    """200 toys per cell: mean within 0.2 of 0 and width within 0.2 of 1 (4 and 5 standard
    errors), cells above Z 3 no more than chance allows (at most 4 of 400; a standard normal
    gives 0.5 on average, the calibrated scan's own width of ~1.1 about 1.3), for a perfect
    template and one whose cut efficiencies are 30% too low."""
    z = signed_z(range(200), bias)
    assert np.isfinite(z).all()
    assert np.all(np.abs(z.mean(axis=0)) < 0.2), z.mean(axis=0)
    assert np.all(np.abs(z.std(axis=0) - 1) < 0.2), z.std(axis=0)
    assert (z > 3).sum() <= 4


def test_without_the_nuisance_a_wrong_template_makes_an_excess():
    """The same 30%-off template without its control measurement: a false excess above Z 5 in
    the 10% cell of every toy (this is what the nuisance covers)."""
    z = signed_z(range(20), 0.3, control=False)
    assert np.all(z[:, 0] > 5), z[:, 0]


def test_a_large_signal_is_still_claimed_with_a_wrong_template():
    """200 signal events above every cut (fewer than the 1% cut keeps) on the 30%-off
    template: local Z above 5 in the 1% cell."""
    result = scan_spectra(toy(7, 0.3, n_signal=200))
    assert result.significances[0, 1] > 5


def test_pseudo_scans_model_the_nuisance_as_the_scan_does():
    """The look-elsewhere path (batched) gives the scan's local Z for the same spectra."""
    spectra = toy(3, 0.3)
    expected = scan_spectra(spectra).signed_significances
    config = ScanConfig(efficiencies=EFFICIENCIES)
    got = pseudo_scan(spectra, spectra.inclusive[None], spectra.counts[None], config)
    np.testing.assert_allclose(got[0], expected, atol=2e-3)


def test_control_ratios_and_variation():
    """Ratios per window and cut (1 +- 0 without a control or at efficiency 1); the variation
    scales the background by the ratio and adds one nuisance of relative width error / ratio."""
    rng = np.random.default_rng(0)
    sample = ControlSample(rng.random(10_000), template_scores(10_000, 1.0, rng))
    ratio, error = control_ratios(np.array([[-np.inf, 0.9], [0.5, 0.9]]), [sample, None])
    assert ratio[0, 0] == 1.0
    assert error[0, 0] == 0.0
    assert ratio[0, 1] == pytest.approx(2.0, abs=4 * error[0, 1])
    assert (ratio[1] == 1.0).all()
    assert (error[1] == 0.0).all()
    assert control_ratios(np.zeros((1, 2)), [None]) is None
    nominal, up, down = control_variation(
        np.array([10.0, 20.0]), np.ones((1, 2)), np.ones((1, 2)), 2.0, 0.2
    )
    np.testing.assert_allclose(nominal, [20.0, 40.0])
    assert up.shape == down.shape == (2, 2)
    np.testing.assert_allclose(up[1], [22.0, 44.0])
    np.testing.assert_allclose(down[1], nominal / 1.1)
    with pytest.raises(ValueError, match="positive and finite"):
        control_variation(nominal, up, down, np.nan, 0.1)
    with pytest.raises(ValueError, match="a control"):
        control_ratios(np.zeros((2, 1)), [None])
    assert VARIATION == "reference_mismodelling"


def test_a_window_failing_closure_is_kept_only_when_its_mismodelling_is_measured():
    """The 30%-off template fails closure; with its control sample the window stays tested."""
    measured = scan_spectra(toy(5, 0.3))
    (outcome,) = measured.closure
    assert not outcome.passed
    assert outcome.covered
    assert measured.fit_valid.all()
    unmeasured = scan_spectra(toy(5, 0.3, control=False))
    assert not unmeasured.closure[0].covered
    assert not unmeasured.fit_valid.any()
