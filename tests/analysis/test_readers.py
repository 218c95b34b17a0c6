"""Readers and input validation on small files written in the real layouts."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pandas as pd
import pytest

from analysis.data import (
    LHCO_FEATURE_COLUMNS,
    iter_lhco,
    read_lhco,
    read_table,
    validate_features,
    validate_lhco,
)


@pytest.fixture(params=["fixed", "table"])
def lhco_file(request, tmp_path, small_lhco):
    """The small table written as pandas HDF5 (key 'df') in the fixed or table format."""
    path = tmp_path / f"events_{request.param}.h5"
    small_lhco.to_hdf(path, key="df", format=request.param)
    return path


def test_read_lhco_round_trips_the_file(lhco_file, small_lhco):
    pd.testing.assert_frame_equal(read_lhco(lhco_file), small_lhco)


def test_chunked_read_equals_full_read(lhco_file, small_lhco):
    pd.testing.assert_frame_equal(read_lhco(lhco_file, chunksize=10), small_lhco)


def test_iter_lhco_yields_chunks_in_file_order(lhco_file, small_lhco):
    chunks = list(iter_lhco(lhco_file, 10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    pd.testing.assert_frame_equal(pd.concat(chunks), small_lhco)


def test_mixed_dtype_file_reads_in_chunks_too(tmp_path, small_lhco):
    table = small_lhco.astype({"label": "int64", "mj1": "float32"})
    path = tmp_path / "mixed.h5"
    table.to_hdf(path, key="df")
    pd.testing.assert_frame_equal(read_lhco(path, chunksize=8), table)


def test_read_lhco_selects_columns(lhco_file, small_lhco):
    columns = ["mj2", "pxj1", "label"]
    for chunksize in (None, 7):
        df = read_lhco(lhco_file, columns=columns, chunksize=chunksize)
        pd.testing.assert_frame_equal(df, small_lhco[columns])


def test_black_box_file_without_label_reads(tmp_path, small_lhco):
    path = tmp_path / "black_box.h5"
    small_lhco.drop(columns="label").to_hdf(path, key="df")
    df = read_lhco(path)
    assert list(df.columns) == list(LHCO_FEATURE_COLUMNS)
    assert len(df) == len(small_lhco)
    with pytest.raises(KeyError, match="label"):
        read_lhco(path, require_label=True)


def test_missing_column_is_named(tmp_path, small_lhco):
    path = tmp_path / "missing.h5"
    small_lhco.drop(columns="tau3j2").to_hdf(path, key="df")
    with pytest.raises(KeyError, match="tau3j2"):
        read_lhco(path)
    with pytest.raises(KeyError, match="nonexistent"):
        read_lhco(tmp_path / "missing.h5", columns=["mj1", "nonexistent"])


def test_missing_file_and_key(tmp_path, lhco_file):
    with pytest.raises(FileNotFoundError, match=r"nope\.h5"):
        read_lhco(tmp_path / "nope.h5")
    with pytest.raises(KeyError, match="'events'"):
        read_lhco(lhco_file, key="events")


@pytest.mark.parametrize(
    ("column", "value", "error", "message"),
    [
        ("mj1", np.nan, ValueError, r"NaN or inf in column\(s\) 'mj1': 2 of 25 rows"),
        ("pzj2", np.inf, ValueError, r"NaN or inf in column\(s\) 'pzj2': 2 of 25 rows"),
        ("mj2", -5.0, ValueError, r"negative values in column\(s\) 'mj2': 2 of 25 rows"),
        ("tau1j1", -0.1, ValueError, r"negative values in column\(s\) 'tau1j1': 2 of 25"),
        ("label", 2.0, ValueError, r"label values other than 0/1 .*'label': 2 of 25 rows"),
    ],
)
@pytest.mark.parametrize("file_format", ["fixed", "table"])
def test_bad_values_raise_with_counts(
    tmp_path, small_lhco, column, value, error, message, file_format
):
    bad = small_lhco.copy()
    bad.loc[[3, 17], column] = value
    path = tmp_path / "bad.h5"
    bad.to_hdf(path, key="df", format=file_format)
    with pytest.raises(error, match=message):
        read_lhco(path)


def test_chunked_read_error_says_which_rows(tmp_path, small_lhco):
    bad = small_lhco.copy()
    bad.loc[12, "mj1"] = np.nan
    path = tmp_path / "bad.h5"
    bad.to_hdf(path, key="df")
    with pytest.raises(ValueError, match=r"rows 10-19: .*'mj1': 1 of 10 rows"):
        read_lhco(path, chunksize=10)


def test_non_numeric_column_is_a_type_error(small_lhco):
    bad = small_lhco.astype({"tau2j2": object})
    bad.loc[[0, 1, 2], "tau2j2"] = "n/a"
    with pytest.raises(TypeError, match=r"'tau2j2' \(dtype object, 3 of 25 rows not numbers\)"):
        validate_lhco(bad)


def test_validation_never_drops_rows(small_lhco):
    # A valid table passes unchanged: validation has no side effects.
    before = small_lhco.copy()
    validate_lhco(small_lhco, require_label=True)
    pd.testing.assert_frame_equal(small_lhco, before)


def test_chunksize_must_be_positive_int(lhco_file):
    with pytest.raises(ValueError, match="positive"):
        read_lhco(lhco_file, chunksize=0)
    with pytest.raises(TypeError, match="positive int"):
        list(iter_lhco(lhco_file, 2.5))


def _features_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "mjj": [3.4, 3.5, 2.9, 4.1],
            "mj1": [0.1, 0.2, 0.05, 0.3],
            "extra": [1.0, 2.0, 3.0, 4.0],
            "label": [0, 1, 0, 1],
        }
    )


def test_read_table_csv_keeps_declared_columns_in_order(tmp_path):
    path = tmp_path / "features.csv"
    _features_table().to_csv(path, index=False)
    df = read_table(path, ["mj1", "mjj"])
    assert list(df.columns) == ["mj1", "mjj"]
    np.testing.assert_allclose(df["mjj"], [3.4, 3.5, 2.9, 4.1])


def test_read_table_hdf5_casts_to_schema(tmp_path):
    path = tmp_path / "features.h5"
    _features_table().astype({"label": "float64"}).to_hdf(path, key="features", format="table")
    df = read_table(path, {"mjj": "float32", "label": "int64"})
    assert df.dtypes.to_dict() == {"mjj": np.dtype("float32"), "label": np.dtype("int64")}
    assert df["label"].tolist() == [0, 1, 0, 1]


def test_read_table_refuses_lossy_integer_cast(tmp_path):
    path = tmp_path / "features.csv"
    _features_table().to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"'mj1' .* 4 of 4 rows would change"):
        read_table(path, {"mj1": "int64"})


def test_read_table_errors_name_the_problem(tmp_path):
    path = tmp_path / "features.csv"
    table = _features_table().astype({"mj1": object})
    table.loc[1, "mj1"] = "oops"
    table.to_csv(path, index=False)
    with pytest.raises(TypeError, match=r"'mj1' .*1 of 4 rows not numbers"):
        read_table(path, ["mjj", "mj1"])
    with pytest.raises(KeyError, match="tau21_j1"):
        read_table(path, ["mjj", "tau21_j1"])
    with pytest.raises(ValueError, match="unknown table format"):
        read_table(path.rename(tmp_path / "features.txt"), ["mjj"])
    with pytest.raises(TypeError, match="schema"):
        read_table(tmp_path / "features.txt", "mjj")


def test_read_table_parquet_without_engine_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "features.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ImportError, match="pyarrow"):
        read_table(path, ["mjj"])


def test_validate_features_checks_nan_negative_and_labels():
    table = _features_table()
    validate_features(table, ["mjj", "mj1", "label"])
    with pytest.raises(ValueError, match=r"'mjj': 1 of 4 rows"):
        validate_features(table.assign(mjj=[3.4, np.nan, 2.9, 4.1]), ["mjj"])
    with pytest.raises(ValueError, match=r"negative values .*'mj1': 2 of 4"):
        validate_features(table.assign(mj1=[-0.1, 0.2, -0.05, 0.3]), ["mj1"])
    with pytest.raises(ValueError, match=r"other than 0/1 .*'label': 1 of 4"):
        validate_features(table.assign(label=[0, 1, 3, 1]), ["label"])
    with pytest.raises(KeyError, match="tau32_j1"):
        validate_features(table, ["tau32_j1"])


class _WritesMarker:
    """An object whose unpickling runs code: it creates the directory `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.makedirs, (self.path, 0o777, True))


@pytest.fixture
def evil_file(tmp_path, small_lhco):
    """An LHCO-layout file (fixed format, key 'df') whose 'tau1j1' holds pickled objects."""
    marker = tmp_path / "unpickled.marker"
    evil = small_lhco.astype({"tau1j1": object})
    evil["tau1j1"] = [_WritesMarker(marker) for _ in range(len(evil))]
    path = tmp_path / "evil.h5"
    with pytest.warns(pd.errors.PerformanceWarning, match="pickle"):
        evil.to_hdf(path, key="df", format="fixed")
    return path, marker


def test_crafted_file_is_what_it_claims(evil_file):
    # pandas itself runs the payload: the file really is hostile.
    path, marker = evil_file
    pd.read_hdf(path, key="df")
    assert marker.exists()


@pytest.mark.parametrize(
    "read",
    [read_lhco, lambda path: next(iter_lhco(path, 10)), lambda path: read_table(path, ["tau1j1"])],
    ids=["read_lhco", "iter_lhco", "read_table"],
)
def test_reading_a_crafted_file_never_unpickles(evil_file, read):
    path, marker = evil_file
    with pytest.raises(TypeError, match=r"\['tau1j1'\] are stored as object .*nothing is"):
        read(path)
    assert not marker.exists()


def test_table_format_string_column_is_refused_by_dtype(tmp_path, small_lhco):
    bad = small_lhco.astype({"mj2": str})
    path = tmp_path / "strings.h5"
    bad.to_hdf(path, key="df", format="table")
    with pytest.raises(TypeError, match=r"\['mj2'\] are stored as \|S"):
        read_lhco(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"empty \(0 bytes\), not an HDF5 file"),
        (b"mjj,mj1\n3.5,0.1\n", "not a readable HDF5 file"),
    ],
)
def test_not_an_hdf5_file_is_named(tmp_path, content, message):
    path = tmp_path / "events.h5"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"events\.h5 (is )?{message}"):
        read_lhco(path)


def test_truncated_file_is_named(tmp_path):
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.uniform(0.1, 1.0, (20_000, len(LHCO_FEATURE_COLUMNS))))
    table.columns = list(LHCO_FEATURE_COLUMNS)
    path = tmp_path / "cut.h5"
    table.to_hdf(path, key="df")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.h5 is (damaged|not a readable HDF5 file)"):
        read_lhco(path)


def test_filter_h5py_lacks_is_named_with_the_way_out(tmp_path, small_lhco):
    path = tmp_path / "blosc.h5"
    small_lhco.to_hdf(path, key="df", complib="blosc", complevel=5)
    with pytest.raises(ValueError, match=r"blosc\.h5 .*compressed with a filter .*complib='zlib'"):
        read_lhco(path)


def test_zlib_compressed_file_reads(tmp_path, small_lhco):
    path = tmp_path / "zlib.h5"
    small_lhco.to_hdf(path, key="df", complib="zlib", complevel=5)
    pd.testing.assert_frame_equal(read_lhco(path), small_lhco)
