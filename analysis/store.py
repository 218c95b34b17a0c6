"""Checkpoints of a search: atomic files per unit of work, tied to the configuration."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from generative.fileio import write_atomic

__all__ = ["ConfigChangedError", "ResultStore", "write_atomic", "write_json"]


class ConfigChangedError(RuntimeError):
    """The results folder holds results of a different configuration."""


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


class ResultStore:
    """A folder of finished units (arrays and JSON) belonging to one configuration fingerprint."""

    def __init__(self, root: str | os.PathLike, fingerprint: str) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint

    def open(self) -> ResultStore:
        """Create the folder, or check that its results came from the same configuration."""
        manifest = self.root / "manifest.json"
        if manifest.exists():
            found = json.loads(manifest.read_text()).get("fingerprint")
            if found != self.fingerprint:
                raise ConfigChangedError(
                    f"{self.root} holds results of another configuration (fingerprint {found}, "
                    f"this one {self.fingerprint}); choose a new output folder or remove it"
                )
        else:
            write_json(manifest, {"fingerprint": self.fingerprint})
        return self

    def _path(self, key: str, suffix: str) -> Path:
        return self.root / "units" / f"{key}{suffix}"

    def has(self, key: str) -> bool:
        """Whether the unit `key` finished in an earlier (or this) run."""
        return self._path(key, ".npz").exists() or self._path(key, ".json").exists()

    def save_arrays(self, key: str, **arrays: np.ndarray) -> None:
        """Store a finished unit's arrays."""
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomic(self._path(key, ".npz"), buffer.getvalue())

    def load_arrays(self, key: str) -> dict[str, np.ndarray]:
        """Arrays of a finished unit."""
        with np.load(self._path(key, ".npz")) as data:
            return {k: data[k] for k in data.files}

    def save_json(self, key: str, payload: Any) -> None:
        """Store a finished unit's JSON record."""
        write_json(self._path(key, ".json"), payload)

    def load_json(self, key: str) -> Any:
        """JSON record of a finished unit."""
        return json.loads(self._path(key, ".json").read_text())
