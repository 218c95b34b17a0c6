"""High-level features against hand computations on hand-made showers."""

import numpy as np
import pytest

from generative.calo import features as features_module
from generative.calo.features import (
    apply_threshold,
    centres_and_widths,
    feature_info,
    high_level_features,
    layer_energies,
    layer_sparsity,
)
from generative.calo.geometry import load_dataset_geometry, parse_binning_xml
from generative.calo.io import ShowerData

# layer 0: rings at r = 0.5 and 2 (one sector); layer 1: r = 1 at alpha -3pi/4, -pi/4, pi/4, 3pi/4
GEOMETRY = parse_binning_xml(
    '<Bins><Bin name="photon">'
    '<Layer id="0" r_edges="0,1,3" n_bin_alpha="1"/>'
    '<Layer id="1" r_edges="0,2" n_bin_alpha="4"/>'
    "</Bin></Bins>"
)
C = np.sqrt(0.5)
# shower 0: 3 MeV and 0.5 MeV (below threshold) in layer 0; 2 MeV at -pi/4 and at +pi/4 in layer 1
# shower 1: empty; shower 2: 5 MeV at -3pi/4 and 1 MeV at pi/4 in layer 1 only
SHOWERS = np.array(
    [
        [3.0, 0.5, 0.0, 2.0, 2.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 5.0, 0.0, 1.0, 0.0],
    ]
)
DATA = ShowerData(energies=np.array([10.0, 20.0, 12.0]), showers=SHOWERS)


def test_columns_follow_the_geometry():
    table = high_level_features(DATA, GEOMETRY)
    assert list(table.columns) == [
        "E_tot_over_E_inc",
        "E_tot",
        "E_layer_0",
        "E_layer_1",
        "EC_eta_layer_1",
        "EC_phi_layer_1",
        "width_eta_layer_1",
        "width_phi_layer_1",
        "sparsity_layer_0",
        "sparsity_layer_1",
        "EC_r_layer_0",
        "EC_r_layer_1",
        "width_r_layer_0",
        "width_r_layer_1",
    ]
    photons = load_dataset_geometry("1-photons")
    one = ShowerData(energies=np.ones(1), showers=np.ones((1, 368)))
    assert high_level_features(one, photons).shape == (1, 2 + 5 + 4 * 2 + 5 + 2 * 5)


def test_radial_centres_and_widths_use_the_radial_bin_centres():
    t = high_level_features(DATA, GEOMETRY, threshold=0.0)
    for lid, sl in GEOMETRY.layer_slices.items():
        energy, r = DATA.showers[:, sl], GEOMETRY.voxel_r[sl]
        total = energy.sum(axis=1) + 1e-16
        centre = energy @ r / total
        width = np.sqrt(np.clip(energy @ r**2 / total - centre**2, 0, None))
        np.testing.assert_allclose(t[f"EC_r_layer_{lid}"], centre)
        np.testing.assert_allclose(t[f"width_r_layer_{lid}"], width)


def test_features_match_hand_computation():
    t = high_level_features(DATA, GEOMETRY)
    np.testing.assert_allclose(t["E_layer_0"], [3.0, 0.0, 0.0])
    np.testing.assert_allclose(t["E_layer_1"], [4.0, 0.0, 6.0])
    np.testing.assert_allclose(t["E_tot"], [7.0, 0.0, 6.0])
    np.testing.assert_allclose(t["E_tot_over_E_inc"], [0.7, 0.0, 0.5])
    # shower 2: x = (5 * -C + 1 * C) / 6 = -2C/3, y = (5 * -C + 1 * C) / 6 = -2C/3
    np.testing.assert_allclose(t["EC_eta_layer_1"], [C, 0.0, -2 * C / 3], atol=1e-12)
    np.testing.assert_allclose(t["EC_phi_layer_1"], [0.0, 0.0, -2 * C / 3], atol=1e-12)
    # widths: sqrt(<x^2> - <x>^2); shower 2: <x^2> = 1/2, so sqrt(1/2 - 2/9)
    width2 = np.sqrt(0.5 - 2 / 9)
    np.testing.assert_allclose(t["width_eta_layer_1"], [0.0, 0.0, width2], atol=1e-7)
    np.testing.assert_allclose(t["width_phi_layer_1"], [C, 0.0, width2], atol=1e-7)
    np.testing.assert_allclose(t["sparsity_layer_0"], [0.5, 1.0, 1.0])
    np.testing.assert_allclose(t["sparsity_layer_1"], [0.5, 1.0, 0.5])


def test_threshold_is_configurable():
    t = high_level_features(DATA, GEOMETRY, threshold=0.0)
    np.testing.assert_allclose(t["E_layer_0"], [3.5, 0.0, 0.0])
    np.testing.assert_allclose(t["sparsity_layer_0"], [0.0, 1.0, 1.0])
    t = high_level_features(DATA, GEOMETRY, threshold=2.5)
    np.testing.assert_allclose(t["E_layer_1"], [0.0, 0.0, 5.0])
    np.testing.assert_allclose(apply_threshold(SHOWERS, 2.0)[0], [3, 0, 0, 2, 2, 0])
    with pytest.raises(ValueError, match="threshold"):
        apply_threshold(SHOWERS, -1.0)


def test_building_blocks_agree_with_the_table():
    t = high_level_features(DATA, GEOMETRY, threshold=0.0)
    np.testing.assert_allclose(layer_energies(SHOWERS, GEOMETRY), t[["E_layer_0", "E_layer_1"]])
    np.testing.assert_allclose(
        layer_sparsity(SHOWERS, GEOMETRY), t[["sparsity_layer_0", "sparsity_layer_1"]]
    )
    centroid = centres_and_widths(SHOWERS, GEOMETRY, 1)
    np.testing.assert_allclose(centroid.x, t["EC_eta_layer_1"])
    np.testing.assert_allclose(centroid.y, t["EC_phi_layer_1"])
    np.testing.assert_allclose(centroid.width_x, t["width_eta_layer_1"])
    np.testing.assert_allclose(centroid.width_y, t["width_phi_layer_1"])
    with pytest.raises(KeyError, match="layer 5 has no voxels"):
        centres_and_widths(SHOWERS, GEOMETRY, 5)


def test_chunked_computation_equals_one_pass(monkeypatch):
    rng = np.random.default_rng(3)
    data = ShowerData(energies=rng.uniform(10, 100, 101), showers=rng.exponential(2.0, (101, 6)))
    whole = high_level_features(data, GEOMETRY)
    monkeypatch.setattr(features_module, "_CHUNK_VALUES", 6 * 7)  # 7 events per chunk
    chunked = high_level_features(data, GEOMETRY)
    np.testing.assert_allclose(chunked.to_numpy(), whole.to_numpy(), rtol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="showers have 6 voxels but the 'photon' geometry has 368"):
        high_level_features(DATA, load_dataset_geometry("1-photons"))
    with pytest.raises(TypeError, match="ShowerData"):
        high_level_features(SHOWERS, GEOMETRY)
    with pytest.raises(ValueError, match=r"shape \(N, 6\)"):
        layer_energies(np.ones((2, 5)), GEOMETRY)
    empty = ShowerData(energies=np.zeros(0), showers=np.zeros((0, 6)))
    with pytest.raises(ValueError, match="0 events"):
        high_level_features(empty, GEOMETRY)


def test_feature_info():
    assert feature_info("E_layer_12").log_scale
    assert feature_info("E_layer_12").unit == "MeV"
    assert "layer 2" in feature_info("width_phi_layer_2").label
    assert not feature_info("E_tot_over_E_inc").log_scale
    with pytest.raises(KeyError, match="not a high-level feature"):
        feature_info("mjj")
