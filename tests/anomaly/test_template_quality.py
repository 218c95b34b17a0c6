"""Template-quality diagnostics: the two-sample test and CATHODE's sideband/interpolation tests."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly import CATHODE, ControlSample
from anomaly.template_quality import (
    TwoSampleTest,
    auc_null_error,
    efficiency_closure,
    two_sample_auc,
)
from generative.flows import MAF
from tests.anomaly.conftest import TINY_FLOW

HGB = {"n_models": 1, "max_iter": 50}
#: a small flow trained long enough to model the Gaussian window (a few seconds)
FLOW = {
    **TINY_FLOW,
    "training": {"epochs": 40, "batch_size": 256, "learning_rate": 3e-3, "patience": None},
}


def test_two_sample_auc_is_chance_for_one_distribution_and_high_for_two():
    """Same distribution: AUC within 4 null errors of 0.5; a 0.3-sigma shift: far beyond."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3000, 3)), rng.normal(size=(6000, 3))
    same = two_sample_auc(a, b, classifier_params=HGB, random_state=0)
    assert isinstance(same, TwoSampleTest)
    assert (same.n_a, same.n_b) == (3000, 6000)
    assert same.error == pytest.approx(auc_null_error(3000, 6000))
    assert abs(same.z) < 4
    shifted = two_sample_auc(a + 0.3, b, classifier_params=HGB, random_state=0)
    assert shifted.z > 10
    assert shifted.to_dict()["z"] == pytest.approx(shifted.z)


def test_two_sample_auc_is_seeded_and_refuses_mismatched_features():
    """Same seed, same AUC; samples with different feature counts are an error."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(500, 2)), rng.normal(size=(500, 2))
    first = two_sample_auc(a, b, classifier_params=HGB, random_state=3)
    assert two_sample_auc(a, b, classifier_params=HGB, random_state=3).auc == first.auc
    with pytest.raises(ValueError, match="same features"):
        two_sample_auc(a, b[:, :1])
    with pytest.raises(ValueError, match="both samples need events"):
        auc_null_error(0, 5)


class ShiftedMAF(MAF):
    """A deliberately wrong template: the flow's samples moved by one unit in every feature."""

    def sample(self, context, **kwargs):
        return super().sample(context, **kwargs) + 1.0


def _cathode(gaussian, density_model, **params):
    det = CATHODE(density_model=density_model, classifier_params=HGB, random_state=0, **params)
    return det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)


def test_a_wrong_template_fails_the_sideband_test_and_a_fitted_one_passes(gaussian):
    """The held-out sideband test separates a shifted template from the fitted flow's."""
    good = _cathode(gaussian, MAF(**FLOW)).template_tests_["sideband"]
    wrong = _cathode(gaussian, ShiftedMAF(**FLOW)).template_tests_["sideband"]
    n_sb = int((~gaussian.in_sr).sum())
    # the held-out share is the flow's validation fraction (0.2 by default)
    assert good.n_a == good.n_b == pytest.approx(0.2 * n_sb, rel=0.05)
    assert wrong.z > 8
    # the result record carries the tests as plain numbers for the next stage
    quality = _cathode(gaussian, ShiftedMAF(**FLOW)).result_.reference.quality
    assert quality["sideband"] == wrong.to_dict()
    assert wrong.auc > good.auc + 0.1
    assert good.z < 5


def test_interpolation_test_uses_the_inner_sidebands(gaussian):
    """Fitted on the outer sidebands, tested on every inner-sideband event; off by default."""
    det = _cathode(gaussian, MAF(**FLOW), interpolation_test=True, inner_sideband_width=0.2)
    test = det.template_tests_["interpolation"]
    sb = ~gaussian.in_sr
    low, high = gaussian.mjj[gaussian.in_sr].min(), gaussian.mjj[gaussian.in_sr].max()
    inner = sb & (gaussian.mjj > low - 0.2) & (gaussian.mjj < high + 0.2)
    assert test.n_a == test.n_b == inner.sum()
    assert set(_cathode(gaussian, MAF(**FLOW)).template_tests_) == {"sideband"}
    with pytest.raises(ValueError, match="needs 100 outer-sideband events"):
        _cathode(gaussian, MAF(**FLOW), interpolation_test=True, inner_sideband_width=5.0)


def test_template_keeps_its_masses_when_draws_are_redrawn(gaussian):
    """Invalid draws are redrawn at their own masses: the template's masses are the KDE's."""
    det = _cathode(gaussian, MAF(**FLOW), sideband_test=False)
    assert det.template_tests_ == {}
    n_sr = int(gaussian.in_sr.sum())
    assert det.reference_mjj_.shape == (4 * n_sr,)
    sr_mjj = gaussian.mjj[gaussian.in_sr]
    # the KDE of the SR masses: same mean within a few standard errors
    error = sr_mjj.std() / np.sqrt(n_sr)
    assert abs(det.reference_mjj_.mean() - sr_mjj.mean()) < 4 * error


def test_efficiency_closure_is_one_for_one_distribution_and_off_for_a_wrong_template():
    """Same distribution: data/template efficiency ratios within 4 errors of 1; shifted: far off."""
    rng = np.random.default_rng(2)
    reference, data, template = (rng.normal(size=n) for n in (50_000, 40_000, 40_000))
    same = efficiency_closure(reference, data, template, efficiencies=(0.1, 0.01))
    assert same.thresholds == pytest.approx([1.2816, 2.3263], abs=0.05)
    for ratio, error in zip(same.ratio, same.ratio_error, strict=True):
        assert abs(ratio - 1) < 4 * error
    wrong = efficiency_closure(reference, data + 0.3, template, efficiencies=(0.1, 0.01))
    assert all(r - 1 > 4 * e for r, e in zip(wrong.ratio, wrong.ratio_error, strict=True))
    with pytest.raises(ValueError, match="needs held-out data and template"):
        efficiency_closure(reference, data[:0], template)


def test_pass_ratio_is_one_for_one_distribution_and_finite_when_nothing_passes():
    """Same scores: ratio within 4 errors of 1 at every cut; beyond every score: floored, finite."""
    rng = np.random.default_rng(4)
    control = ControlSample(rng.normal(size=30_000), rng.normal(size=60_000))
    ratio, error = control.pass_ratio(np.array([[0.0, 1.5], [2.5, 3.0]]))
    assert ratio.shape == error.shape == (2, 2)
    assert np.all(np.abs(ratio - 1) < 4 * error)
    # nothing passes: one event's worth of each count, ratio n_model / n_data, error finite
    (ratio,), (error,) = control.pass_ratio(np.array([99.0]))
    assert ratio == pytest.approx(2.0)
    assert 0 < error < 10
    with pytest.raises(ValueError, match="needs data and model events"):
        ControlSample(np.zeros(0), np.zeros(3))


def test_cathode_measures_its_sideband_efficiency(gaussian):
    """The fitted detector reports the efficiency closure on its held-out sidebands and hands
    their scores (data and template at the same masses) to the next stage."""
    det = _cathode(gaussian, MAF(**FLOW))
    closure = det.sideband_efficiency_
    n_held = det.template_tests_["sideband"].n_a
    assert closure.n_data == closure.n_template == n_held
    assert closure.efficiencies == (0.1, 0.01, 0.002)
    assert np.isfinite(closure.ratio[0])
    control = det.result_.reference.control
    assert len(control.data_scores) == len(control.model_scores) == n_held
    ratio, _ = control.pass_ratio(np.array(closure.thresholds))
    assert tuple(ratio) == pytest.approx(closure.ratio)
    quiet = _cathode(gaussian, MAF(**FLOW), sideband_test=False)
    assert quiet.sideband_efficiency_ is None
    assert quiet.result_.reference.control is None


def test_a_shifted_template_shows_in_the_control_sample(gaussian):
    """A deliberately wrong template: the control pass ratios at the cuts keeping 50% and 10%
    of it are far from one."""
    det = _cathode(gaussian, ShiftedMAF(**FLOW))
    thresholds = np.quantile(det.result_.reference.scores, [0.5, 0.9])
    ratio, error = det.result_.reference.control.pass_ratio(thresholds)
    assert np.all(np.abs(ratio - 1) > 4 * error)
