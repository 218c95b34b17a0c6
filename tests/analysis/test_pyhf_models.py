"""pyhf window models: spec content, JSON round trip, template backgrounds, bad input."""

import json

import numpy as np
import pytest

from analysis.regions import Window, as_window
from analysis.stats.dijet import dijet_bin_integrals, fit_dijet, fixed_width_edges, sample_dijet
from analysis.stats.inference import discovery_significance, fast_discovery_significance
from analysis.stats.models import (
    WindowModel,
    build_window_model,
    gaussian_signal,
)
from analysis.stats.template import template_background

EDGES = fixed_width_edges(2.6, 6.0)
SHAPE = np.array([0.0, 7.88, 5.25, 1.22])
WINDOW = Window(3.3, 3.7)
IN_SR = WINDOW.bins(EDGES).sr


def spectrum(n_events: float, seed: int, signal: float = 0.0) -> np.ndarray:
    params = SHAPE.copy()
    params[0] = np.log(n_events / dijet_bin_integrals(EDGES, SHAPE).sum())
    mean = dijet_bin_integrals(EDGES, params) + signal * gaussian_signal(EDGES, 3.5, 0.05)
    return np.random.default_rng(seed).poisson(mean).astype(float)


@pytest.fixture(scope="module")
def counts() -> np.ndarray:
    return spectrum(2e5, seed=1, signal=400.0)


@pytest.fixture(scope="module")
def dijet_model(counts) -> WindowModel:
    fit = fit_dijet(counts, EDGES, ~IN_SR, 4)
    return build_window_model(counts, EDGES, WINDOW, fit)


def test_a_window_is_a_window_or_its_signal_region_pair():
    assert as_window((3.3, 3.7)) == Window(3.3, 3.7)
    assert as_window(WINDOW) is WINDOW
    with pytest.raises(TypeError, match="sr_low"):
        as_window(3.3)
    with pytest.raises(ValueError, match="sr_low < sr_high"):
        as_window((3.7, 3.3))


def test_spec_holds_one_histosys_per_eigenvector(dijet_model, counts):
    spec = dijet_model.spec()
    (channel,) = spec["channels"]
    samples = {s["name"]: s for s in channel["samples"]}
    histosys = [m for m in samples["background"]["modifiers"] if m["type"] == "histosys"]
    assert len(histosys) == 4
    assert all(m["type"] != "staterror" for m in samples["background"]["modifiers"])
    in_sr = IN_SR
    np.testing.assert_array_equal(spec["observations"][0]["data"], counts[in_sr])
    # The signal sample holds the reference yield times the Gaussian fraction in each SR bin.
    fractions = gaussian_signal(EDGES, 3.5, 0.05)[in_sr]
    np.testing.assert_allclose(
        samples["signal"]["data"], dijet_model.signal_reference_yield * fractions
    )
    model = dijet_model.model()
    assert model.config.poi_name == "mu"
    assert model.config.suggested_bounds()[model.config.poi_index][0] < 0


def test_staterror_is_optional(counts):
    fit = fit_dijet(counts, EDGES, ~IN_SR, 4)
    model = build_window_model(counts, EDGES, WINDOW, fit, staterror=0.01 * counts)
    types = [m["type"] for m in model.spec()["channels"][0]["samples"][1]["modifiers"]]
    assert types.count("staterror") == 1
    assert "staterror_window" in model.model().config.parameters


def test_json_round_trip_gives_the_same_inference(dijet_model, tmp_path):
    path = dijet_model.save(tmp_path / "window.json")
    assert json.loads(path.read_text())["format"] == "resonance-search/window-model"
    loaded = WindowModel.load(path)
    for name in ("observed", "background", "background_up", "background_down", "signal", "edges"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(dijet_model, name))
    assert loaded.spec() == dijet_model.spec()
    assert discovery_significance(loaded) == discovery_significance(dijet_model)
    assert fast_discovery_significance(loaded) == fast_discovery_significance(dijet_model)
    assert not list(tmp_path.glob(".*tmp"))


def test_load_rejects_other_json(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"version": "1.0.0"}))
    with pytest.raises(ValueError, match="not a window model"):
        WindowModel.load(path)


def test_user_signal_template(counts):
    fit = fit_dijet(counts, EDGES, ~IN_SR, 4)
    template = np.zeros(EDGES.size - 1)
    template[IN_SR] = [1.0, 3.0, 3.0, 1.0]
    model = build_window_model(counts, EDGES, WINDOW, fit, signal=2 * template)
    np.testing.assert_allclose(
        model.signal / model.signal_reference_yield, [0.125, 0.375, 0.375, 0.125]
    )


def test_template_background_is_normalised_to_the_sidebands():
    """Template of 4x oversampled truth: SR prediction within 3 sigma of the truth."""
    params = SHAPE.copy()
    params[0] = np.log(2e5 / dijet_bin_integrals(EDGES, SHAPE).sum())
    truth = dijet_bin_integrals(EDGES, params)
    data = np.random.default_rng(4).poisson(truth).astype(float)
    samples = sample_dijet(8e5, SHAPE, EDGES[0], EDGES[-1], random_state=5)
    in_sr = IN_SR
    template = template_background(samples, data, EDGES, ~in_sr)
    np.testing.assert_allclose(template.prediction[~in_sr].sum(), data[~in_sr].sum())
    total_sigma = template.prediction[in_sr].sum() * template.norm_uncertainty
    total_sigma = np.hypot(total_sigma, np.sqrt(np.sum(template.stat_uncertainty[in_sr] ** 2)))
    assert abs(template.prediction[in_sr].sum() - truth[in_sr].sum()) < 3 * total_sigma
    model = build_window_model(data, EDGES, WINDOW, template)
    assert model.variation_names == ("template_norm",)
    np.testing.assert_allclose(model.staterror, template.stat_uncertainty[in_sr])
    assert abs(fast_discovery_significance(model).signed_significance) < 3


def test_template_background_bad_input():
    in_sr = IN_SR
    data = np.ones(EDGES.size - 1)
    with pytest.raises(ValueError, match="2 NaN/inf"):
        template_background(np.array([3.0, np.nan, np.inf]), data, EDGES, ~in_sr)
    with pytest.raises(ValueError, match="no events in 4 signal-region bins"):
        template_background(np.array([2.7, 4.5]), data, EDGES, ~in_sr)
    with pytest.raises(ValueError, match="empty sidebands"):
        template_background(np.array([3.5]), np.zeros(EDGES.size - 1), EDGES, ~in_sr)


def test_build_rejects_bad_input(counts):
    fit = fit_dijet(counts, EDGES, ~IN_SR, 4)
    with pytest.raises(ValueError, match="no bin centre"):
        build_window_model(counts, EDGES, (7.0, 7.5), fit)
    with pytest.raises(ValueError, match="1 NaN/inf"):
        build_window_model(np.r_[np.nan, counts[1:]], EDGES, WINDOW, fit)
    with pytest.raises(ValueError, match="bins"):
        build_window_model(counts[:-1], EDGES, WINDOW, fit)
    with pytest.raises(ValueError, match="staterror must be finite, non-negative"):
        build_window_model(counts, EDGES, WINDOW, fit, staterror=-counts)
    with pytest.raises(TypeError, match="FitResult, TemplateBackground or CalibratedFit"):
        build_window_model(counts, EDGES, WINDOW, background=counts)
    failed = fit_dijet(np.r_[np.ones(EDGES.size - 2), 1e12], EDGES, None, 4)
    with pytest.raises(ValueError, match="not valid"):
        build_window_model(counts, EDGES, WINDOW, failed)
