"""Readers for LHC Olympics R&D files (pandas HDF5) and for plain tables of built features.

Both the ``fixed`` format (how the R&D files are distributed) and the ``table`` format are read,
through h5py as numeric arrays (``analysis.data.hdf5``): reading a file never unpickles anything.
Chunks come from row slices of the stored arrays, so a chunked read never holds more than one
chunk besides what the caller keeps. Every table is validated (see ``validation``) before it is
returned: bad rows raise an error, they are never dropped.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.data.hdf5 import HDF5Frame, open_frame
from analysis.data.validation import LABEL_COLUMN, validate_features, validate_lhco

_HDF_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip")
#: Rows per read in ``read_lhco`` (about 16 MB of the R&D layout).
DEFAULT_CHUNKSIZE = 131_072


def read_lhco(
    path: str | Path,
    *,
    key: str = "df",
    chunksize: int | None = None,
    columns: Sequence[str] | None = None,
    require_label: bool = False,
) -> pd.DataFrame:
    """Read and validate an LHCO R&D features file (labelled or black-box), all rows.

    Rows are read ``chunksize`` at a time (default ``DEFAULT_CHUNKSIZE``) and validated chunk by
    chunk. When all columns share one dtype (the R&D files: float64) they are copied into one
    preallocated block, so the peak memory stays near the table's own size; mixed dtypes are
    concatenated (about twice the table).
    """
    chunksize = DEFAULT_CHUNKSIZE if chunksize is None else chunksize
    _check_chunksize(chunksize)
    with _open_lhco(path, key, columns) as frame:
        return _assemble(_chunks(frame, columns, chunksize, require_label), frame.n_rows)


def iter_lhco(
    path: str | Path,
    chunksize: int,
    *,
    key: str = "df",
    columns: Sequence[str] | None = None,
    require_label: bool = False,
) -> Iterator[pd.DataFrame]:
    """Yield validated chunks of ``chunksize`` rows of an LHCO R&D file, in file order."""
    _check_chunksize(chunksize)
    with _open_lhco(path, key, columns) as frame:
        yield from _chunks(frame, columns, chunksize, require_label)


def read_table(
    path: str | Path,
    schema: Mapping[str, Any] | Sequence[str],
    *,
    key: str | None = None,
) -> pd.DataFrame:
    """Read a plain features table (HDF5, parquet or CSV) with the declared columns.

    ``schema`` is a sequence of column names, or a mapping of names to dtypes (``None`` keeps
    the stored dtype). Only the declared columns are returned, in the declared order; they are
    validated (numeric, finite, known non-negative features, 0/1 ``label``) and then cast.
    ``key`` selects the HDF5 dataset when the file holds several.
    """
    dtypes = _schema_dtypes(schema)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no features table at {path}")
    suffix = "".join(path.suffixes[-2:]).lower()
    wanted = list(dtypes)
    if suffix.endswith(_HDF_SUFFIXES):
        with open_frame(path, key) as frame:
            df = frame.read([c for c in wanted if c in frame.columns])
    elif suffix.endswith(_PARQUET_SUFFIXES):
        if not any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")):
            raise ImportError(
                f"reading the parquet file {path} needs pyarrow or fastparquet, neither is "
                "installed (pip install pyarrow), or convert the table to HDF5 or CSV"
            )
        df = _parsed(path, "parquet file", lambda: pd.read_parquet(path))
    elif suffix.endswith(_CSV_SUFFIXES):
        df = _parsed(path, "CSV table", lambda: pd.read_csv(path, usecols=lambda c: c in dtypes))
    else:
        raise ValueError(
            f"unknown table format for {path}: expected one of "
            f"{_HDF_SUFFIXES + _PARQUET_SUFFIXES + _CSV_SUFFIXES}"
        )
    df = _select_columns(df, wanted, path)
    _located(str(path), lambda: validate_features(df, wanted))
    return _cast(df, dtypes, path)


def _parsed(path: Path, what: str, read: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """The table `read` parses; a file it cannot parse is named (pandas' errors name no file)."""
    try:
        return read()
    except (ValueError, OSError) as err:  # ParserError, EmptyDataError, UnicodeDecodeError, ...
        raise ValueError(f"{path} is not a readable {what} ({err})") from None


def _located(where: str, check: Callable[[], None]) -> None:
    """Run a validation; its errors keep their type and say where they come from."""
    try:
        check()
    except (KeyError, TypeError, ValueError) as err:
        raise type(err)(f"{where}: {err.args[0]}") from err


def _schema_dtypes(schema: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    if isinstance(schema, Mapping):
        dtypes = dict(schema)
    elif isinstance(schema, Sequence) and not isinstance(schema, str):
        dtypes = dict.fromkeys(schema)
    else:
        raise TypeError(
            f"schema must be a sequence of column names or a mapping name -> dtype, got {schema!r}"
        )
    if not dtypes:
        raise ValueError("schema declares no columns")
    if len(dtypes) != len(schema):
        raise ValueError(f"schema repeats column names: {list(schema)}")
    return dtypes


def _cast(df: pd.DataFrame, dtypes: Mapping[str, Any], path: Path) -> pd.DataFrame:
    casts = {c: dt for c, dt in dtypes.items() if dt is not None}
    if not casts:
        return df
    out = df.astype(casts)
    # An integer cast would silently truncate fractional values (a float cast only rounds).
    for c in (c for c in casts if pd.api.types.is_integer_dtype(out[c].dtype)):
        changed = int(np.count_nonzero(out[c].to_numpy() != df[c].to_numpy()))
        if changed:
            raise ValueError(
                f"column '{c}' of {path} cannot be stored as {casts[c]}: "
                f"{changed} of {len(df)} rows would change value"
            )
    return out


def _select_columns(
    df: pd.DataFrame, columns: Sequence[str] | None, path: str | Path
) -> pd.DataFrame:
    if columns is None:
        return df
    columns = list(columns)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"{path} has no column(s) {missing}; it has {list(map(str, df.columns))}")
    return df[columns]


def _validate_lhco_chunk(
    df: pd.DataFrame, columns: Sequence[str] | None, require_label: bool, where: str
) -> None:
    """validate_lhco on (part of) a file; errors keep their type and say where they come from."""
    if columns is not None and require_label and LABEL_COLUMN not in columns:
        raise KeyError(f"require_label=True but columns {list(columns)} leave out '{LABEL_COLUMN}'")
    _located(where, lambda: validate_lhco(df, require_label=require_label, columns=columns))


def _check_chunksize(chunksize: object) -> None:
    if isinstance(chunksize, bool) or not isinstance(chunksize, (int, np.integer)):
        raise TypeError(f"chunksize must be a positive int, got {chunksize!r}")
    if chunksize <= 0:
        raise ValueError(f"chunksize must be a positive int, got {chunksize}")


def _chunks(
    frame: HDF5Frame, columns: Sequence[str] | None, chunksize: int, require_label: bool
) -> Iterator[pd.DataFrame]:
    # An empty file still yields one (empty, validated) chunk so callers see its columns.
    for start in range(0, max(frame.n_rows, 1), chunksize):
        chunk = frame.read(columns, start=start, stop=start + chunksize)
        where = f"{frame.path}, rows {start}-{start + len(chunk) - 1}"
        _validate_lhco_chunk(chunk, columns, require_label, where)
        yield chunk


def _assemble(chunks: Iterator[pd.DataFrame], n_rows: int) -> pd.DataFrame:
    """One DataFrame of all chunks, filled in place when every column has the same dtype."""
    first = next(chunks)
    if len(set(first.dtypes)) != 1:
        return pd.concat([first, *chunks])
    # Fortran order is pandas' own column-major block layout: the frame adopts it, no copy.
    values = np.empty((n_rows, first.shape[1]), dtype=first.dtypes.iloc[0], order="F")
    indexes = []
    stop = 0
    for chunk in itertools.chain([first], chunks):
        values[stop : stop + len(chunk)] = chunk.to_numpy()
        stop += len(chunk)
        indexes.append(chunk.index)
    index = indexes[0].append(indexes[1:]) if len(indexes) > 1 else indexes[0]
    return pd.DataFrame(values, index=index, columns=first.columns, copy=False)


@contextmanager
def _open_lhco(path: str | Path, key: str, columns: Sequence[str] | None) -> Iterator[HDF5Frame]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no LHCO file at {path}")
    with open_frame(path, key) as frame:
        # Check requested columns up front so both storage formats fail the same way.
        _select_columns(frame.read(start=0, stop=0), columns, path)
        yield frame
