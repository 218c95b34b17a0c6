"""Metrics of anomaly scores: ROC, AUC, SIC with its statistical floor, rejection."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm

from analysis.metrics import (
    DEFAULT_MIN_BACKGROUND,
    Metrics,
    auc,
    compute_metrics,
    max_sic,
    rejection_at,
    roc_curve,
    sic_curve,
)


@pytest.fixture(scope="module")
def gaussian_scores() -> tuple[np.ndarray, np.ndarray]:
    """Background scores N(0, 1), signal scores N(1, 1): known ROC."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], [200_000, 50_000])
    scores = rng.normal(size=len(y)) + y
    return y, scores


def test_auc_matches_gaussian_shift(gaussian_scores):
    """AUC of two unit Gaussians 1 sigma apart is Phi(1/sqrt 2) = 0.760, within 4 sigma."""
    y, s = gaussian_scores
    assert auc(y, s) == pytest.approx(norm.cdf(1 / np.sqrt(2)), abs=4 * 0.0015)


def test_roc_is_monotone_and_ends_at_one(gaussian_scores):
    """Efficiencies grow as the cut loosens and reach 1 at the loosest cut."""
    roc = roc_curve(*gaussian_scores)
    assert np.all(np.diff(roc.eps_b) >= 0)
    assert np.all(np.diff(roc.eps_s) >= 0)
    assert roc.eps_b[-1] == 1.0
    assert roc.eps_s[-1] == 1.0
    assert (roc.n_background, roc.n_signal) == (200_000, 50_000)


def test_rejection_matches_gaussian_quantiles(gaussian_scores):
    """At eps_S = 0.5 the cut is at 1 (signal median): eps_B = 1 - Phi(1) = 0.159."""
    y, s = gaussian_scores
    assert rejection_at(y, s, 0.5) == pytest.approx(1 / norm.sf(1.0), rel=0.03)
    cut = norm.isf(0.2) + 1.0
    assert rejection_at(y, s, 0.2) == pytest.approx(1 / norm.sf(cut), rel=0.05)


def test_sic_curve_definition(gaussian_scores):
    """SIC is eps_S / sqrt(eps_B) pointwise; surviving background counts match eps_B."""
    sic = sic_curve(*gaussian_scores)
    ok = sic.eps_b > 0
    np.testing.assert_allclose(sic.sic[ok], sic.eps_s[ok] / np.sqrt(sic.eps_b[ok]))
    np.testing.assert_array_equal(sic.n_background_selected, np.rint(sic.eps_b * 200_000))
    assert np.isnan(sic.sic[~ok]).all()


def test_max_sic_respects_the_floor():
    """A perfectly separated signal: the SIC is capped by the minimum background kept."""
    y = np.repeat([0, 1], [10_000, 100])
    s = np.where(y == 1, 10.0, 0.0) + np.linspace(0, 1, len(y))
    for floor in (1, 50, 400):
        best = max_sic(y, s, min_background=floor)
        assert best.min_background == floor
        assert best.eps_b * 10_000 >= floor - 1e-9
        # All signal kept plus exactly `floor` background events is the best allowed cut.
        assert best.value == pytest.approx(1.0 / np.sqrt(floor / 10_000))


def test_max_sic_default_floor_is_fifty(gaussian_scores):
    """The default floor is 50 background events and it is recorded."""
    assert DEFAULT_MIN_BACKGROUND == 50
    assert max_sic(*gaussian_scores).min_background == 50


def test_compute_metrics_record_is_json_ready(gaussian_scores):
    """The summary holds every number, with rejections below the floor mapped to None."""
    m = compute_metrics(*gaussian_scores)
    assert isinstance(m, Metrics)
    d = m.to_dict()
    json.dumps(d)
    assert d["min_background"] == 50
    assert d["n_signal"] == 50_000
    assert 0.7 < d["auc"] < 0.8
    perfect = compute_metrics(np.repeat([0, 1], [100, 10]), np.repeat([0.0, 1.0], [100, 10]))
    assert perfect.to_dict()["rejection_at_eps_s_0p5"] is None
    assert "Infinity" not in json.dumps(perfect.to_dict())


def test_rejection_has_the_background_floor():
    # 8 background events pass a cut keeping 20% of the signal: 1/eps_B = 1000/8 rests on 8.
    y = np.repeat([0, 1], [1000, 100])
    s = np.r_[np.arange(1000) >= 992, np.arange(100) < 20].astype(float)
    assert rejection_at(y, s, 0.2) == pytest.approx(125.0)
    assert np.isnan(rejection_at(y, s, 0.2, min_background=50))
    assert rejection_at(y, s, 0.2, min_background=8) == pytest.approx(125.0)
    assert np.isnan(compute_metrics(y, s, min_background=20).rejection_at_eps_s_0p2)


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        ([0, 1, 1], [0.1, 0.2], "equal length"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "0 \\(background\\) and 1"),
        ([0, 0, 0], [0.1, 0.2, 0.3], "both signal and background"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "NaN/inf in 1 of 3"),
    ],
)
def test_bad_input_raises(y, s, match):
    """Mismatched lengths, bad labels, one class only and NaN scores are errors."""
    with pytest.raises(ValueError, match=match):
        auc(y, s)


def test_floor_larger_than_background_raises():
    """A floor above the number of background test events cannot be honoured."""
    with pytest.raises(ValueError, match="fewer than the floor"):
        max_sic([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], min_background=50)
    with pytest.raises(ValueError, match="eps_s must be in"):
        rejection_at([0, 1], [0.1, 0.2], 0.0)
