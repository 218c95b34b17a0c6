"""Pandas HDF5 frames read through h5py as numeric column arrays: nothing is ever unpickled.

``pandas.read_hdf`` unpickles object columns (a crafted file runs code when it is read) and
PyTables unpickles attributes. Here only numeric datasets are read; a column of any other dtype
is refused by its stored dtype, before any of its bytes are decoded. The one piece of metadata
pandas stores only as a pickle, the column names of the ``table`` format (a protocol-0 pickle of a
list of strings), goes through a decoder that admits literal opcodes only (no global, no call).
"""

from __future__ import annotations

import io
import pickle
import pickletools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

__all__ = ["HDF5Frame", "frame_keys", "open_frame"]

#: numpy dtype kinds read as numbers: bool, signed and unsigned integers, floats
_NUMERIC_KINDS = frozenset("biuf")
#: pickle opcodes that build literals (strings, numbers, lists, tuples, dicts) and nothing else
_LITERAL_OPCODES = frozenset(
    {
        "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP",
        "NONE", "NEWTRUE", "NEWFALSE", "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1",
        "LONG4", "FLOAT", "BINFLOAT", "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE",
        "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES",
        "EMPTY_LIST", "APPEND", "APPENDS", "LIST", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2",
        "TUPLE3", "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS", "PUT", "BINPUT", "LONG_BINPUT",
        "GET", "BINGET", "LONG_BINGET", "MEMOIZE",
    }
)  # fmt: skip


class _LiteralUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def _literal(raw: bytes, where: str) -> object:
    """The literal a protocol-0 pickle of plain data encodes; anything else is refused."""
    try:
        ops = {op.name for op, _, _ in pickletools.genops(raw)}
    except Exception as err:  # any malformed stream is a corrupt file, whatever genops raises
        raise ValueError(f"{where}: unreadable column metadata ({err})") from None
    if not ops <= _LITERAL_OPCODES:
        raise ValueError(
            f"{where}: column metadata holds code ({', '.join(sorted(ops - _LITERAL_OPCODES))}), "
            "refused"
        )
    return _LiteralUnpickler(io.BytesIO(raw)).load()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _array(dataset: h5py.Dataset, where: str) -> h5py.Dataset | np.ndarray:
    """The dataset, or the empty array a PyTables placeholder (one dummy element) stands for."""
    if "shape" not in dataset.attrs:
        return dataset
    shape = tuple(_literal(bytes(dataset.attrs["shape"]), where))
    if np.prod(shape) != 0:
        return dataset
    dtype = _text(dataset.attrs.get("value_type", dataset.dtype.str))
    return np.empty(shape, dtype=dataset.dtype if dtype == "object" else np.dtype(dtype))


@dataclass(frozen=True)
class _Column:
    dataset: h5py.Dataset | np.ndarray
    #: field of a compound row (table format) or None (fixed format block)
    field: str | None
    #: position inside the block or the field's sub-array, None for a scalar field
    position: int | None


class HDF5Frame:
    """One pandas frame stored under `key` of an open HDF5 file (fixed or table format)."""

    def __init__(self, path: Path, key: str, group: h5py.Group) -> None:
        # Storage: fixed format, one 2-D dataset per dtype block (rows x columns) with the
        # column names in blockN_items; table format, one compound dataset of rows.
        self.path, self.key = path, key
        kind = _text(group.attrs.get("pandas_type", b""))
        if kind == "frame":
            self._columns, self._index = self._fixed(group)
        elif kind == "frame_table":
            self._columns, self._index = self._table(group)
        else:
            raise ValueError(
                f"{path}: '{key}' is not a pandas DataFrame (pandas_type {kind or 'missing'!r})"
            )
        self.columns: list[str] = list(self._columns)
        self.n_rows: int = int(self._index[0].shape[0])

    def _where(self) -> str:
        return f"{self.path} '{self.key}'"

    def _fixed(self, group: h5py.Group) -> tuple[dict[str, _Column], tuple]:
        for axis in ("axis0", "axis1"):
            if _text(group.attrs.get(f"{axis}_variety", b"regular")) != "regular":
                raise ValueError(f"{self._where()}: multi-level {axis} is not supported")
        names = [_text(n) for n in group["axis0"][()]]
        columns: dict[str, _Column] = {}
        for b in range(int(group.attrs["nblocks"])):
            items = [_text(n) for n in group[f"block{b}_items"][()]]
            values = group[f"block{b}_values"]
            self._refuse_non_numeric(values.dtype, items)
            values = _array(values, self._where())
            if values.size == 0:
                # pandas stores blocks transposed; an empty one keeps (columns, 0) as its shape.
                values = np.empty((0, len(items)), dtype=values.dtype)
            if values.ndim != 2 or values.shape[1] != len(items):
                raise ValueError(f"{self._where()}: block {b} has shape {values.shape}")
            columns.update({name: _Column(values, None, i) for i, name in enumerate(items)})
        index = _array(group["axis1"], self._where())
        return {name: columns[name] for name in names}, (index, None)

    def _table(self, group: h5py.Group) -> tuple[dict[str, _Column], tuple]:
        table = group["table"]
        order = _literal(bytes(group.attrs["non_index_axes"]), self._where())
        names = [str(n) for n in order[0][1]]
        columns: dict[str, _Column] = {}
        for field in table.dtype.names:
            if field == "index":
                continue
            items = [str(n) for n in _literal(bytes(table.attrs[f"{field}_kind"]), self._where())]
            sub = table.dtype.fields[field][0]
            self._refuse_non_numeric(sub.base, items)
            if sub.shape:
                columns.update({n: _Column(table, field, i) for i, n in enumerate(items)})
            else:
                columns[items[0]] = _Column(table, field, None)
        return {name: columns[name] for name in names}, (table, "index")

    def _refuse_non_numeric(self, dtype: np.dtype, items: Sequence[str]) -> None:
        if dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(
                f"{self._where()}: column(s) {list(items)} are stored as {dtype} "
                f"({'Python objects' if dtype.kind == 'O' else 'not numbers'}); only numeric "
                "columns are read and nothing is unpickled"
            )

    def read(
        self, columns: Sequence[str] | None = None, start: int = 0, stop: int | None = None
    ) -> pd.DataFrame:
        """Rows [start, stop) of the named columns (default all), as pandas wrote them."""
        names = self.columns if columns is None else list(columns)
        missing = [c for c in names if c not in self._columns]
        if missing:
            raise KeyError(f"{self.path} has no column(s) {missing}; it has {self.columns}")
        stop = self.n_rows if stop is None else min(stop, self.n_rows)
        start = min(start, stop)
        rows: dict[int, np.ndarray] = {}
        try:
            data = {}
            for name in names:
                col = self._columns[name]
                block = rows.get(id(col.dataset))
                if block is None:
                    block = rows[id(col.dataset)] = col.dataset[start:stop]
                values = block if col.field is None else block[col.field]
                data[name] = values if col.position is None else values[:, col.position]
            index_source, index_field = self._index
            index = index_source[start:stop]
        except OSError as err:
            raise _unreadable(self.path, err, f"rows {start}-{stop}") from None
        index = index if index_field is None else index[index_field]
        index = pd.Index(index) if index.dtype.kind in "iu" else pd.RangeIndex(start, stop)
        return pd.DataFrame(data, index=index, columns=names)


def _unreadable(path: Path, err: OSError, where: str) -> ValueError:
    # PyTables' blosc/lzo/bzip2 filters are HDF5 plugins that h5py does not ship.
    if "plugin" in str(err) or "filter" in str(err):
        return ValueError(
            f"{path} ({where}) is compressed with a filter h5py cannot read ({err}); re-save it "
            "uncompressed or with zlib (pandas: complib='zlib')"
        )
    return ValueError(f"{path} is damaged ({where}: {err})")


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise FileNotFoundError(f"no such file {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes), not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5 file ({err})") from None


def _frame_groups(handle: h5py.File) -> list[str]:
    keys = []
    handle.visititems(
        lambda name, node: (
            keys.append(name)
            if isinstance(node, h5py.Group) and "pandas_type" in node.attrs
            else None
        )
    )
    return keys


def frame_keys(path: str | Path) -> list[str]:
    """Keys of the pandas frames stored in an HDF5 file."""
    with _open(Path(path)) as handle:
        return _frame_groups(handle)


@contextmanager
def open_frame(path: str | Path, key: str | None = None) -> Iterator[HDF5Frame]:
    """The pandas frame under `key` (None: the file's only frame) of an HDF5 file, open."""
    path = Path(path)
    with _open(path) as handle:
        keys = _frame_groups(handle)
        if key is None:
            if len(keys) != 1:
                raise KeyError(f"{path} holds {len(keys)} frames {keys}; name one with key=")
            key = keys[0]
        if key.strip("/") not in keys:
            raise KeyError(f"{path} has no dataset '{key}'; it has {['/' + k for k in keys]}")
        try:
            frame = HDF5Frame(path, key, handle[key.strip("/")])
        except (KeyError, IndexError, AttributeError) as err:
            # A group that claims to be a pandas frame but lacks its parts is a damaged file.
            raise ValueError(f"{path} '{key}' is not a complete pandas frame ({err})") from None
        except OSError as err:
            raise _unreadable(path, err, f"'{key}'") from None
        yield frame
