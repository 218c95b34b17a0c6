"""The shower models: shapes, physics constraints, seeding, persistence and input checks."""

import numpy as np
import pytest
from sklearn.base import clone

from generative import NotFittedError
from generative.calo.features import layer_energies
from generative.calo.models import (
    SHOWER_MODELS,
    CaloFlow,
    CaloFlowINN,
    CaloINN,
    FlowMatchingShowers,
    ShowerModel,
    check_incident_energies,
    make_shower_model,
)
from generative.estimator import CorruptFileError
from tests.calo.conftest import FAST_PARAMS, fast_shower_model
from tests.generative.test_estimator import flip_bytes

ENERGIES = 2.0 ** np.array([8, 9, 10, 11, 12, 10, 9, 8, 12, 11, 10, 9])


def test_every_registered_model_has_a_fast_configuration():
    expected = {"caloflow", "flow_matching", "calo_inn", "caloflow_inn"}
    assert set(SHOWER_MODELS) == set(FAST_PARAMS) == expected
    assert SHOWER_MODELS["calo_inn"] is CaloINN
    assert SHOWER_MODELS["caloflow_inn"] is CaloFlowINN
    assert SHOWER_MODELS["caloflow"] is CaloFlow
    assert SHOWER_MODELS["flow_matching"] is FlowMatchingShowers


def test_generates_showers_of_the_right_shape_with_non_negative_energies(fitted_model):
    showers = fitted_model.sample(ENERGIES, random_state=0)
    assert showers.shape == (len(ENERGIES), fitted_model.geometry_.n_voxels)
    assert np.all(np.isfinite(showers))
    assert showers.min() >= 0
    # below the readout threshold learned from the data generated voxels are exact zeros
    assert fitted_model.threshold_ > 0
    assert not np.any((showers > 0) & (showers < fitted_model.threshold_))
    assert np.all(showers.sum(axis=1) > 0)


def test_no_shower_deposits_more_than_the_training_energy_scale(fitted_model):
    """Energy conservation: E_tot / E_inc stays below the fitted cap (1 + margin) x max seen."""
    energies = np.repeat(2.0 ** np.array([8, 10, 12]), 50)
    showers = fitted_model.sample(energies, random_state=2)
    relative = next(s for s in fitted_model.preprocessing_.steps if hasattr(s, "scale_"))
    assert np.all(showers.sum(axis=1) <= energies * float(relative.scale_) * (1 + 1e-9))


def test_energy_scale_follows_the_incident_energy(fitted_model):
    energies = np.repeat(2.0 ** np.array([8, 12]), 100)
    totals = fitted_model.sample(energies, random_state=1).sum(axis=1)
    low, high = totals[:100].mean(), totals[100:].mean()
    # the data have E_tot / E_inc independent of E_inc: a 16x higher energy means ~16x more
    assert 4 < high / low < 64


def test_same_seed_same_showers_different_seed_different_showers(fitted_model):
    a = fitted_model.sample(ENERGIES, random_state=3, batch_size=5)
    b = fitted_model.sample(ENERGIES, random_state=3, batch_size=5)
    c = fitted_model.sample(ENERGIES, random_state=4, batch_size=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unseeded_calls_draw_fresh_showers_reproducibly(tiny_geometry, tiny_data):
    def draws():
        model = fast_shower_model("flow_matching", tiny_geometry)
        model.fit(tiny_data.showers, tiny_data.energies)
        return model.sample(ENERGIES), model.sample(ENERGIES)

    first, second = draws()
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(draws()[0], first)


def test_batches_bound_the_work_but_cover_every_shower(fitted_model):
    showers = fitted_model.sample(ENERGIES, random_state=0, batch_size=1)
    assert showers.shape[0] == len(ENERGIES)
    assert np.all(showers.sum(axis=1) > 0)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        fitted_model.sample(ENERGIES, batch_size=0)


def test_save_load_round_trip_gives_identical_samples(fitted_model, tmp_path):
    path = fitted_model.save(tmp_path / "model.pt")
    loaded = ShowerModel.load(path)
    assert type(loaded) is type(fitted_model)
    assert loaded.get_params()["noise"] == fitted_model.noise
    np.testing.assert_array_equal(
        loaded.sample(ENERGIES, random_state=7), fitted_model.sample(ENERGIES, random_state=7)
    )
    other = CaloFlow if isinstance(fitted_model, FlowMatchingShowers) else FlowMatchingShowers
    with pytest.raises(TypeError, match="not a"):
        other.load(path)


def test_load_rejects_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no shower model file"):
        ShowerModel.load(tmp_path / "missing.pt")


def test_a_shower_model_with_200_flipped_bytes_is_refused(fitted_model, tmp_path):
    path = fitted_model.save(tmp_path / "model.pt")
    flip_bytes(path)
    with pytest.raises(CorruptFileError, match=r"model\.pt is corrupted: its SHA-256 checksum"):
        ShowerModel.load(path)


def test_a_subclass_without_its_own_name_does_not_register():
    before = dict(SHOWER_MODELS)

    class Tweaked(CaloFlow):
        pass

    assert dict(SHOWER_MODELS) == before
    assert SHOWER_MODELS["caloflow"] is CaloFlow


@pytest.mark.parametrize("name", ["caloflow", "caloflow_inn"])
def test_two_stage_layer_energies_sum_correctly(name, tiny_geometry, tiny_data):
    model = fast_shower_model(name, tiny_geometry).fit(tiny_data.showers, tiny_data.energies)
    e_layers = model.sample_layer_energies(ENERGIES, random_state=5, batch_size=5)
    showers = model.sample(ENERGIES, random_state=5, batch_size=5)
    assert e_layers.shape == (len(ENERGIES), 3)
    assert e_layers.min() >= 0
    # each layer of a generated shower carries flow 1's energy, less voxels zeroed below the
    # readout threshold
    n_voxels = np.array([layer.n_voxels for layer in tiny_geometry.active_layers])
    diff = e_layers - layer_energies(showers, tiny_geometry)
    assert np.all(diff >= -1e-9 * e_layers)
    assert np.all(diff <= n_voxels * max(model.noise, model.threshold_))


def test_fit_returns_self_and_sets_fitted_attributes(tiny_geometry, tiny_data):
    model = fast_shower_model("flow_matching", tiny_geometry)
    assert model.fit(tiny_data.showers, tiny_data.energies) is model
    assert model.n_voxels_ == tiny_geometry.n_voxels
    assert set(model.models_) == {"flow"}
    unfitted = clone(model)
    assert not hasattr(unfitted, "models_")
    with pytest.raises(NotFittedError):
        unfitted.sample(ENERGIES)
    with pytest.raises(NotFittedError):
        unfitted.save("never-written.pt")


def test_bad_training_input_raises_clear_errors(tiny_geometry, tiny_data):
    model = fast_shower_model("caloflow", tiny_geometry)
    showers, energies = tiny_data.showers.copy(), tiny_data.energies
    with pytest.raises(ValueError, match="showers have 7 voxels but the 'photon' geometry has 8"):
        model.fit(showers[:, :7], energies)
    bad = showers.copy()
    bad[[1, 4], 2] = -1.0
    with pytest.raises(ValueError, match="showers contain negative energies in 2 of 300 events"):
        model.fit(bad, energies)
    bad = showers.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="showers contain NaN/inf in 1 of 300 events"):
        model.fit(bad, energies)
    with pytest.raises(ValueError, match="299 incident energies but 300 showers"):
        model.fit(showers, energies[:-1])
    with pytest.raises(ValueError, match="at least 10 showers"):
        model.fit(showers[:5], energies[:5])


def test_bad_incident_energies_for_sampling(fitted_model):
    with pytest.raises(ValueError, match="NaN/inf in 1 of 2"):
        fitted_model.sample([256.0, np.nan])
    with pytest.raises(ValueError, match="must be positive: 1 of 2"):
        fitted_model.sample([256.0, -1.0])
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(N, 1\)"):
        fitted_model.sample(np.ones((2, 2)))
    np.testing.assert_array_equal(check_incident_energies([[1.0], [2.0]]), [1.0, 2.0])


def test_unknown_model_and_geometry(tiny_data):
    with pytest.raises(ValueError, match="unknown shower model 'gan'"):
        make_shower_model("gan")
    model = make_shower_model("flow_matching", geometry="no-such-dataset")
    with pytest.raises(ValueError, match="neither a data set"):
        model.fit(tiny_data.showers, tiny_data.energies)


def test_default_geometry_is_dataset_1_photons():
    model = make_shower_model("caloflow")
    assert model.geometry == "1-photons"
    assert "shape_flow" in model.get_params()
    with pytest.raises(ValueError, match="368"):
        model.fit(np.ones((20, 10)), np.full(20, 256.0))


def test_flow_matching_on_voxels_and_on_layers(tiny_geometry, tiny_data):
    for representation in ("voxels", "layers"):
        model = fast_shower_model("flow_matching", tiny_geometry, representation=representation)
        showers = model.fit(tiny_data.showers, tiny_data.energies).sample(ENERGIES, random_state=0)
        assert showers.shape == (len(ENERGIES), tiny_geometry.n_voxels)
        assert showers.min() >= 0
    with pytest.raises(ValueError, match="representation must be 'layers' or 'voxels'"):
        fast_shower_model("flow_matching", tiny_geometry, representation="pixels").fit(
            tiny_data.showers, tiny_data.energies
        )


@pytest.mark.parametrize(("threshold", "expected"), [("auto", 2.0), (5.0, 5.0), (None, 0.0)])
def test_readout_threshold_is_learned_or_applied(tiny_geometry, tiny_data, threshold, expected):
    showers = tiny_data.showers.copy()
    showers[showers < 2.0] = 0.0  # the data's zero suppression at 2 MeV
    showers[0, 0] = 2.0
    model = fast_shower_model("flow_matching", tiny_geometry, threshold=threshold)
    model.fit(showers, tiny_data.energies)
    assert model.threshold_ == expected
    generated = model.sample(np.repeat(ENERGIES, 10), random_state=0)
    floor = max(expected, model.noise)
    assert not np.any((generated > 0) & (generated < floor))
    if threshold is not None:
        # the unsuppressed model would have produced voxels below the threshold
        raw = fast_shower_model("flow_matching", tiny_geometry, threshold=None)
        raw = raw.fit(showers, tiny_data.energies).sample(np.repeat(ENERGIES, 10), random_state=0)
        assert np.any((raw > 0) & (raw < floor))
