"""Checkpoints of a search: atomic files per unit of work, tied to the configuration and data.

Every unit carries a SHA-256 of its payload, verified when it is read: a truncated, emptied or
altered checkpoint is never used. A damaged unit found while resuming is removed and redone; one
found while gathering results is named with how to recover. The manifest ties the folder to the
fingerprint of the configuration and to that of the data contents (not their paths), so a
resumed run never mixes results of another configuration or of changed input files. A folder
that holds no results yet (an earlier run failed before finishing a unit) is taken over.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from generative.fileio import write_atomic

__all__ = [
    "JSON",
    "ConfigChangedError",
    "CorruptCheckpointError",
    "ResultStore",
    "arrays_fingerprint",
    "data_fingerprint",
    "write_atomic",
    "write_json",
]

log = logging.getLogger(__name__)

#: a JSON document as a checkpoint holds it (e.g. the `to_dict` of a statistics record)
JSON = dict[str, Any]

#: name of the checksum entry inside a unit's .npz, and key of the JSON envelope
_CHECKSUM = "__sha256__"
#: errors numpy and json raise on a damaged file (EOFError: a 0-byte .npz)
_DAMAGED = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError)


class ConfigChangedError(RuntimeError):
    """The results folder holds results of a different configuration or of other data."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is damaged; the message names it and says how to recover."""


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Atomically write a JSON document (non-finite floats become null)."""
    return write_atomic(path, json.dumps(_finite(payload), indent=2, sort_keys=False))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def _arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _json_digest(payload: Any) -> str:
    # Through a JSON round trip first, so the digest is that of what a reader gets back.
    text = json.dumps(json.loads(json.dumps(payload)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def arrays_fingerprint(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 (16 hex digits) of named arrays: names, dtypes, shapes and values."""
    return _arrays_digest(arrays)[:16]


def data_fingerprint(events: pd.DataFrame) -> str:
    """SHA-256 of a table's contents: column names, dtypes and values in row order."""
    return arrays_fingerprint({str(c): events[c].to_numpy() for c in events.columns})


class ResultStore:
    """A folder of finished units (arrays and JSON) belonging to one configuration fingerprint."""

    def __init__(self, root: str | os.PathLike, fingerprint: str) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint

    @property
    def _manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def _manifest(self) -> dict[str, Any]:
        path = self._manifest_path
        try:
            manifest = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CorruptCheckpointError(
                f"{path} is damaged ({err}); remove {self.root} (or choose another output "
                "folder) to start afresh"
            ) from None
        if not isinstance(manifest, dict):
            raise CorruptCheckpointError(f"{path} is not a manifest; remove {self.root}")
        return manifest

    def holds_results(self) -> bool:
        """Whether any unit or final result has been written into the folder."""
        units = self.root / "units"
        has_units = units.is_dir() and any(p.is_file() for p in units.rglob("*"))
        return has_units or (self.root / "results.json").exists()

    def open(self) -> ResultStore:
        """Create the folder, or check that its results came from the same configuration."""
        if self._manifest_path.exists():
            found = self._manifest().get("fingerprint")
            if found == self.fingerprint:
                return self
            if self.holds_results():
                raise ConfigChangedError(
                    f"{self.root} holds results of another configuration (fingerprint {found}, "
                    f"this one {self.fingerprint}); choose a new output folder or remove it"
                )
            log.info("%s holds no results of its configuration %s: reused", self.root, found)
        write_json(self._manifest_path, {"fingerprint": self.fingerprint})
        return self

    def check_data(self, fingerprint: str, part: str | None = None) -> None:
        """Tie the folder to the data contents; refuse results computed from other data.

        `part` names one of several data sets (e.g. a comparison's benchmark) tied separately.
        """
        manifest = self._manifest()
        name = "data" if part is None else f"data/{part}"
        found = manifest.get(name)
        if found == fingerprint:
            return
        if found is not None and self.holds_results():
            what = "input data" if part is None else f"data of {part}"
            raise ConfigChangedError(
                f"{self.root} holds results of other {what} (data fingerprint {found}, these "
                f"data {fingerprint}): an input file changed; choose a new output folder or "
                "remove it"
            )
        write_json(self._manifest_path, {**manifest, name: fingerprint})

    def _path(self, key: str, suffix: str) -> Path:
        return self.root / "units" / f"{key}{suffix}"

    def has(self, key: str) -> bool:
        """Whether the unit `key` finished intact; a damaged checkpoint is removed to be redone."""
        for suffix, load in ((".npz", self.load_arrays), (".json", self.load_json)):
            path = self._path(key, suffix)
            if not path.exists():
                continue
            try:
                load(key)
            except CorruptCheckpointError as err:
                log.warning("%s; it is removed and its unit redone", err)
                path.unlink(missing_ok=True)
                return False
            return True
        return False

    def save_arrays(self, key: str, **arrays: np.ndarray) -> None:
        """Store a finished unit's arrays with their checksum."""
        buffer = io.BytesIO()
        np.savez(buffer, **arrays, **{_CHECKSUM: np.array(_arrays_digest(arrays))})
        write_atomic(self._path(key, ".npz"), buffer.getvalue())

    def load_arrays(self, key: str) -> dict[str, np.ndarray]:
        """Arrays of a finished unit, verified against their checksum."""
        path = self._path(key, ".npz")
        try:
            # From bytes: numpy leaves its file open when a damaged archive fails to parse.
            with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            stored = str(arrays.pop(_CHECKSUM))
        except _DAMAGED as err:
            raise self._corrupt(path, f"unreadable: {type(err).__name__}: {err}") from None
        if stored != _arrays_digest(arrays):
            raise self._corrupt(path, "its contents do not match their checksum")
        return arrays

    def save_json(self, key: str, payload: Any) -> None:
        """Store a finished unit's JSON record with its checksum."""
        payload = _finite(payload)
        write_json(self._path(key, ".json"), {_CHECKSUM: _json_digest(payload), "payload": payload})

    def load_json(self, key: str) -> Any:
        """JSON record of a finished unit, verified against its checksum."""
        path = self._path(key, ".json")
        try:
            envelope = json.loads(path.read_text())
            stored, payload = envelope[_CHECKSUM], envelope["payload"]
        except (*_DAMAGED, UnicodeDecodeError, TypeError) as err:
            raise self._corrupt(path, f"unreadable: {type(err).__name__}: {err}") from None
        if stored != _json_digest(payload):
            raise self._corrupt(path, "its contents do not match their checksum")
        return payload

    def _corrupt(self, path: Path, why: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(
            f"checkpoint {path} is damaged ({why}); delete it and run again to redo its unit"
        )
