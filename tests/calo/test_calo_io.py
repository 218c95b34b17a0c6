"""Reading and writing the CaloChallenge HDF5 format."""

import h5py
import numpy as np
import pytest

from generative.calo.geometry import parse_binning_xml
from generative.calo.io import ShowerData, read_showers, write_showers
from generative.fileio import atomic_path

GEOMETRY = parse_binning_xml(
    '<Bins><Bin name="photon"><Layer id="0" r_edges="0,1,2" n_bin_alpha="3"/></Bin></Bins>'
)


def _data(n=50, n_voxels=6, seed=0):
    rng = np.random.default_rng(seed)
    energies = (2.0 ** rng.integers(8, 23, n)).astype(np.float32)
    showers = rng.exponential(10.0, (n, n_voxels)) * (rng.random((n, n_voxels)) < 0.5)
    return ShowerData(energies=energies, showers=showers.astype(np.float32))


def _write_raw(path, energies, showers):
    with h5py.File(path, "w") as f:
        f.create_dataset("incident_energies", data=energies)
        f.create_dataset("showers", data=showers)


def test_round_trip(tmp_path):
    data = _data()
    path = write_showers(tmp_path / "sub" / "showers.h5", data)
    back = read_showers(path, geometry=GEOMETRY)
    np.testing.assert_array_equal(back.energies, data.energies)
    np.testing.assert_array_equal(back.showers, data.showers)
    assert back.showers.dtype == np.float32
    with h5py.File(path, "r") as f:
        assert f["incident_energies"].shape == (50, 1)
        assert f["showers"].shape == (50, 6)
        assert f["showers"].compression == "gzip"


def test_reads_the_first_max_events(tmp_path):
    data = _data()
    path = write_showers(tmp_path / "s.h5", data)
    back = read_showers(path, max_events=7)
    assert len(back) == 7
    np.testing.assert_array_equal(back.showers, data.showers[:7])
    assert len(read_showers(path, max_events=1000)) == 50
    with pytest.raises(ValueError, match="max_events"):
        read_showers(path, max_events=0)


def test_empty_data_round_trips(tmp_path):
    empty = ShowerData(energies=np.zeros(0), showers=np.zeros((0, 6)))
    back = read_showers(write_showers(tmp_path / "e.h5", empty))
    assert len(back) == 0
    assert back.n_voxels == 6


def test_wrong_voxel_count_for_geometry(tmp_path):
    path = write_showers(tmp_path / "s.h5", _data(n_voxels=7))
    with pytest.raises(ValueError, match=r"showers have 7 voxels but the 'photon' geometry has 6"):
        read_showers(path, geometry=GEOMETRY)


def test_nan_and_negative_energies_are_reported_with_counts(tmp_path):
    data = _data()
    showers = data.showers.copy()
    showers[[3, 5], 0] = np.nan
    _write_raw(tmp_path / "nan.h5", data.energies[:, None], showers)
    with pytest.raises(ValueError, match=r"nan\.h5: showers contain NaN/inf in 2 of 50 events"):
        read_showers(tmp_path / "nan.h5")
    showers = data.showers.copy()
    showers[[1, 2, 4], 1] = -1.0
    _write_raw(tmp_path / "neg.h5", data.energies[:, None], showers)
    with pytest.raises(ValueError, match="negative energies in 3 of 50 events"):
        read_showers(tmp_path / "neg.h5")


def test_inconsistent_files(tmp_path):
    data = _data()
    _write_raw(tmp_path / "n.h5", data.energies[:10, None], data.showers)
    with pytest.raises(ValueError, match="10 incident energies but 50 showers"):
        read_showers(tmp_path / "n.h5")
    with h5py.File(tmp_path / "k.h5", "w") as f:
        f.create_dataset("showers", data=data.showers)
    with pytest.raises(KeyError, match="lacks dataset"):
        read_showers(tmp_path / "k.h5")
    with pytest.raises(FileNotFoundError, match="no shower file"):
        read_showers(tmp_path / "missing.h5")


@pytest.mark.parametrize(
    ("energies", "showers", "error", "message"),
    [
        (np.ones(3), np.ones(3), ValueError, r"shape \(N, n_voxels\)"),
        (np.ones((3, 2)), np.ones((3, 4)), ValueError, r"shape \(N,\) or \(N, 1\)"),
        (np.ones(2), np.ones((3, 4)), ValueError, "2 incident energies but 3 showers"),
        (np.array([1.0, 0.0, 2.0]), np.ones((3, 4)), ValueError, "1 of 3 are 0"),
        (np.array([1.0, np.inf, 2.0]), np.ones((3, 4)), ValueError, "NaN/inf in 1 of 3"),
        (np.array(["a", "b", "c"]), np.ones((3, 4)), TypeError, "numeric"),
    ],
)
def test_shower_data_validates(energies, showers, error, message):
    with pytest.raises(error, match=message):
        ShowerData(energies=energies, showers=showers)


def test_shower_data_accepts_column_energies_and_takes_subsets():
    data = ShowerData(energies=np.array([[1.0], [2.0], [3.0]]), showers=np.eye(3))
    assert data.energies.shape == (3,)
    sub = data.take(np.array([2, 0]))
    np.testing.assert_array_equal(sub.energies, [3.0, 1.0])
    np.testing.assert_array_equal(sub.showers[0], [0, 0, 1])


def test_write_rejects_other_types(tmp_path):
    with pytest.raises(TypeError, match="ShowerData"):
        write_showers(tmp_path / "x.h5", {"showers": np.ones((2, 2))})
    assert not any(tmp_path.iterdir())


def test_failed_write_keeps_the_old_file_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "out.h5"
    target.write_text("old")

    def write_then_fail():
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]


def test_written_dtype_is_float32_unless_float64_is_asked(tmp_path):
    data = ShowerData(energies=np.array([256.0, 512.0]), showers=np.full((2, 3), 2.5))
    assert read_showers(write_showers(tmp_path / "a.h5", data)).showers.dtype == np.float32
    wide = write_showers(tmp_path / "b.h5", data, dtype=np.float64)
    assert read_showers(wide).showers.dtype == np.float64
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        write_showers(tmp_path / "c.h5", data, dtype=np.int32)
