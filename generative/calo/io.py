"""Read and write showers in the CaloChallenge 2022 HDF5 format.

A file holds ``incident_energies`` with shape (N, 1) and ``showers`` with shape (N, n_voxels), both
in MeV, gzip-compressed. Showers are flattened as described in `generative.calo.geometry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from generative.calo.geometry import CaloGeometry
from generative.fileio import atomic_path

__all__ = [
    "ENERGY_KEY",
    "SHOWER_KEY",
    "ShowerData",
    "read_showers",
    "write_showers",
]

ENERGY_KEY = "incident_energies"
SHOWER_KEY = "showers"


def _count_bad(a: np.ndarray) -> tuple[int, int]:
    """Events with a non-finite value and events with a negative value."""
    flat = a.reshape(a.shape[0], -1) if a.size else np.zeros((0, 1))
    return int((~np.isfinite(flat)).any(axis=1).sum()), int((flat < 0).any(axis=1).sum())


@dataclass(frozen=True)
class ShowerData:
    """Showers and their incident energies: `energies` (N,) and `showers` (N, n_voxels), MeV.

    Construction checks shapes, finiteness and signs, so a `ShowerData` is always valid input.
    """

    energies: np.ndarray
    showers: np.ndarray

    def __post_init__(self) -> None:
        energies = np.asarray(self.energies)
        showers = np.asarray(self.showers)
        if energies.ndim == 2 and energies.shape[1] == 1:
            energies = energies[:, 0]
        if energies.ndim != 1:
            raise ValueError(f"energies must have shape (N,) or (N, 1), got {energies.shape}")
        if showers.ndim != 2:
            raise ValueError(f"showers must have shape (N, n_voxels), got {showers.shape}")
        if showers.shape[0] != energies.shape[0]:
            raise ValueError(
                f"{energies.shape[0]} incident energies but {showers.shape[0]} showers"
            )
        n = energies.shape[0]
        for name, arr in (("incident energies", energies), ("showers", showers)):
            if not np.issubdtype(arr.dtype, np.number):
                raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
            n_nonfinite, n_negative = _count_bad(arr)
            if n_nonfinite:
                raise ValueError(f"{name} contain NaN/inf in {n_nonfinite} of {n} events")
            if n_negative:
                raise ValueError(f"{name} contain negative energies in {n_negative} of {n} events")
        if n and np.any(energies == 0):
            raise ValueError(
                f"incident energies must be positive: {int((energies == 0).sum())} of {n} are 0"
            )
        object.__setattr__(self, "energies", energies)
        object.__setattr__(self, "showers", showers)

    def __len__(self) -> int:
        return self.energies.shape[0]

    @property
    def n_voxels(self) -> int:
        """Number of voxels per shower."""
        return self.showers.shape[1]

    def take(self, indices: np.ndarray | slice) -> ShowerData:
        """The events selected by an index array, boolean mask or slice."""
        return ShowerData(energies=self.energies[indices], showers=self.showers[indices])

    def check_geometry(self, geometry: CaloGeometry) -> None:
        """Raise ValueError unless the showers have the geometry's number of voxels."""
        if self.n_voxels != geometry.n_voxels:
            raise ValueError(
                f"showers have {self.n_voxels} voxels but the {geometry.particle!r} geometry has "
                f"{geometry.n_voxels}"
            )


def read_showers(
    path: str | Path, *, geometry: CaloGeometry | None = None, max_events: int | None = None
) -> ShowerData:
    """Read a challenge HDF5 file (the first `max_events` events if given)."""
    path = Path(path)
    if max_events is not None and max_events < 1:
        raise ValueError(f"max_events must be at least 1, got {max_events}")
    if not path.is_file():
        raise FileNotFoundError(f"no shower file at {path}")
    with h5py.File(path, "r") as f:
        missing = [k for k in (ENERGY_KEY, SHOWER_KEY) if k not in f]
        if missing:
            raise KeyError(f"{path} lacks dataset(s) {missing}; it has {sorted(f.keys())}")
        n_e, n_s = f[ENERGY_KEY].shape[0], f[SHOWER_KEY].shape[0]
        if n_e != n_s:
            raise ValueError(f"{path}: {n_e} incident energies but {n_s} showers")
        stop = n_e if max_events is None else min(n_e, max_events)
        energies = f[ENERGY_KEY][:stop]
        showers = f[SHOWER_KEY][:stop]
    try:
        data = ShowerData(energies=energies, showers=showers)
    except (ValueError, TypeError) as err:
        raise type(err)(f"{path}: {err}") from None
    if geometry is not None:
        try:
            data.check_geometry(geometry)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    return data


def write_showers(
    path: str | Path,
    data: ShowerData,
    *,
    compression_level: int = 4,
    dtype: type[np.floating] = np.float32,
) -> Path:
    """Write `data` in the challenge format (gzip), atomically; return the path.

    `dtype` float32 (the default) matches the files of ../shared/data/calo; incident energies
    survive exactly (the challenge's 2^8 .. 2^22 MeV are float32 numbers) and showers keep 7
    digits. The challenge's ``evaluate.py`` classifier modes run in float64 and fail when both
    files it compares are float32: against a float32 reference, write float64.
    """
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    if not isinstance(data, ShowerData):
        raise TypeError(f"data must be a ShowerData, got {type(data).__name__}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        # HDF5 cannot compress an empty dataset
        opts = {"compression": "gzip", "compression_opts": compression_level} if len(data) else {}
        energies = data.energies.reshape(-1, 1).astype(dtype)
        f.create_dataset(ENERGY_KEY, data=energies, **opts)
        f.create_dataset(SHOWER_KEY, data=data.showers.astype(dtype), **opts)
    return Path(path)
