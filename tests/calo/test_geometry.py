"""Geometry: voxel maps from hand-made binning XML and the shipped challenge geometries."""

import numpy as np
import pytest

from generative.calo.geometry import (
    DATASETS,
    load_binning,
    load_dataset_geometry,
    parse_binning_xml,
)

# layer 0: 2 rings x 1 sector; layer 5 unused; layer 7: 1 ring x 4 sectors; layer 9: 2 x 2
XML = """<Bins>
  <Bin pid="22" name="photon">
    <Layer id="0" r_edges="0,1,3" n_bin_alpha="1"/>
    <Layer id="5" r_edges="0" n_bin_alpha="1"/>
    <Layer id="7" r_edges="0,2" n_bin_alpha="4"/>
    <Layer id="9" r_edges="0,1,2" n_bin_alpha="2"/>
  </Bin>
</Bins>"""


@pytest.fixture
def geometry():
    return parse_binning_xml(XML)


def test_layers_and_voxel_count(geometry):
    assert geometry.particle == "photon"
    assert geometry.n_voxels == 2 + 0 + 4 + 4
    assert geometry.layer_ids == (0, 7, 9)
    assert geometry.alpha_binned_layer_ids == (7, 9)
    assert geometry.layer_slices == {0: slice(0, 2), 7: slice(2, 6), 9: slice(6, 10)}
    assert geometry.layer(5).n_voxels == 0


def test_flattening_is_layer_then_alpha_then_radius(geometry):
    np.testing.assert_array_equal(geometry.voxel_layer, [0, 0, 7, 7, 7, 7, 9, 9, 9, 9])
    np.testing.assert_array_equal(geometry.voxel_alpha_bin, [0, 0, 0, 1, 2, 3, 0, 0, 1, 1])
    np.testing.assert_array_equal(geometry.voxel_r_bin, [0, 1, 0, 0, 0, 0, 0, 1, 0, 1])


def test_voxel_centres(geometry):
    c = np.sqrt(0.5)
    # layer 0: one sector centred at alpha = 0, ring mid-radii 0.5 and 2
    # layer 7: r = 1 at alpha = -3pi/4, -pi/4, pi/4, 3pi/4
    # layer 9: sectors centred at -pi/2 and pi/2, mid-radii 0.5 and 1.5
    expected_x = [0.5, 2.0, -c, c, c, -c, 0.0, 0.0, 0.0, 0.0]
    expected_y = [0.0, 0.0, -c, -c, c, c, -0.5, -1.5, 0.5, 1.5]
    np.testing.assert_allclose(geometry.voxel_x, expected_x, atol=1e-12)
    np.testing.assert_allclose(geometry.voxel_y, expected_y, atol=1e-12)
    np.testing.assert_allclose(geometry.voxel_r, [0.5, 2, 1, 1, 1, 1, 0.5, 1.5, 0.5, 1.5])


def test_layer_image_reshapes_to_alpha_by_radius(geometry):
    shower = np.arange(10.0)
    np.testing.assert_array_equal(geometry.layer_image(shower, 9), [[6, 7], [8, 9]])
    batch = np.stack([shower, 2 * shower])
    assert geometry.layer_image(batch, 7).shape == (2, 4, 1)
    with pytest.raises(ValueError, match="expected 10 voxels"):
        geometry.layer_image(np.zeros(9), 9)


def test_index_arrays_are_read_only(geometry):
    with pytest.raises(ValueError, match="read-only"):
        geometry.voxel_x[0] = 1.0


def test_equal_geometries_compare_and_hash_equal(geometry):
    other = parse_binning_xml(XML)
    assert other == geometry
    assert hash(other) == hash(geometry)


@pytest.mark.parametrize(
    ("dataset", "n_voxels", "particle", "layer_ids"),
    [
        ("1-photons", 368, "photon", (0, 1, 2, 3, 12)),
        ("1-pions", 533, "pion", (0, 1, 2, 3, 12, 13, 14)),
        ("2", 45 * 9 * 16, "electron", tuple(range(45))),
        ("3", 45 * 18 * 50, "electron", tuple(range(45))),
    ],
)
def test_shipped_dataset_geometries(dataset, n_voxels, particle, layer_ids):
    geometry = load_dataset_geometry(dataset)
    assert geometry.n_voxels == n_voxels
    assert geometry.particle == particle
    assert geometry.layer_ids == layer_ids
    assert len(geometry.voxel_x) == n_voxels


def test_photon_geometry_matches_challenge_layout():
    geometry = load_dataset_geometry("1-photons")
    assert [layer.n_voxels for layer in geometry.active_layers] == [8, 160, 190, 5, 5]
    layer1 = geometry.layer(1)
    assert (layer1.n_r, layer1.n_alpha) == (16, 10)
    # first voxel of layer 1: innermost ring (mid-radius 1 mm) of the sector at -pi + pi/10
    first = geometry.layer_slices[1].start
    alpha = -np.pi + np.pi / 10
    assert geometry.voxel_x[first] == pytest.approx(np.cos(alpha))
    assert geometry.voxel_y[first] == pytest.approx(np.sin(alpha))


def test_load_binning_from_file(tmp_path):
    path = tmp_path / "binning.xml"
    path.write_text(XML)
    assert load_binning(path) == parse_binning_xml(XML)


def test_several_particles_need_a_name():
    xml = (
        '<Bins><Bin name="a"><Layer id="0" r_edges="0,1" n_bin_alpha="1"/></Bin>'
        '<Bin name="b"><Layer id="0" r_edges="0,1,2" n_bin_alpha="3"/></Bin></Bins>'
    )
    assert parse_binning_xml(xml, "b").n_voxels == 6
    with pytest.raises(ValueError, match="several particles"):
        parse_binning_xml(xml)
    with pytest.raises(KeyError, match="'c' not in the binning XML"):
        parse_binning_xml(xml, "c")


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<Bins><Bin", "not well-formed"),
        ("<Bins/>", "no <Bin>"),
        ('<Bins><Bin name="p"/></Bins>', "no <Layer>"),
        ('<Bins><Bin name="p"><Layer id="0" n_bin_alpha="1"/></Bin></Bins>', "r_edges"),
        (
            '<Bins><Bin name="p"><Layer id="0" r_edges="0,2,1" n_bin_alpha="1"/></Bin></Bins>',
            "increasing",
        ),
        (
            '<Bins><Bin name="p"><Layer id="0" r_edges="0,1" n_bin_alpha="0"/></Bin></Bins>',
            "at least 1",
        ),
        (
            '<Bins><Bin name="p"><Layer id="0" r_edges="0,a" n_bin_alpha="1"/></Bin></Bins>',
            "cannot read",
        ),
        (
            '<Bins><Bin name="p"><Layer id="0" r_edges="0" n_bin_alpha="1"/></Bin></Bins>',
            "no voxels",
        ),
        (
            '<Bins><Bin name="p"><Layer id="0" r_edges="0,1" n_bin_alpha="1"/>'
            '<Layer id="0" r_edges="0,1" n_bin_alpha="1"/></Bin></Bins>',
            "duplicate layer ids",
        ),
    ],
)
def test_bad_xml_raises_clear_errors(xml, message):
    with pytest.raises(ValueError, match=message):
        parse_binning_xml(xml)


def test_unknown_dataset_and_layer(geometry):
    with pytest.raises(KeyError, match="unknown data set"):
        load_dataset_geometry("4")
    with pytest.raises(KeyError, match="no layer 3"):
        geometry.layer(3)
    assert set(DATASETS) == {"1-photons", "1-pions", "2", "3"}
