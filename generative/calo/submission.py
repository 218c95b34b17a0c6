"""Is a shower file a valid CaloChallenge submission? Every problem named, none fixed silently.

The challenge's ``evaluate.py`` reads ``incident_energies`` (N, 1) and ``showers`` (N, voxels)
and checks only their lengths and the voxel count; a file that passes that but has NaN,
negative voxels, the wrong units or other incident energies than the request gives metrics
that mean nothing. `check_submission` checks all of it against the geometry and, optionally,
the request (the file whose incident energies the showers must reproduce, in order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from generative.calo.geometry import CaloGeometry
from generative.calo.io import ENERGY_KEY, SHOWER_KEY

__all__ = ["SubmissionCheck", "check_submission"]

#: the deposited over the incident energy of a photon shower lies far inside this range in MeV;
#: a median outside it means other units (GeV or keV give 1e-3 or 1e3)
_PLAUSIBLE_RATIO = (0.05, 20.0)
#: events read at a time, so a check of a large file needs little memory
_CHUNK = 20_000


@dataclass(frozen=True)
class SubmissionCheck:
    """The outcome: `problems` (empty when valid), the number of events and the dtypes."""

    path: str
    n_events: int
    dtypes: dict[str, str]
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """No problem found."""
        return not self.problems


def _dataset_problems(f: h5py.File, geometry: CaloGeometry) -> list[str]:
    problems = [f"lacks the dataset {key!r}" for key in (ENERGY_KEY, SHOWER_KEY) if key not in f]
    if problems:
        return problems
    energies, showers = f[ENERGY_KEY], f[SHOWER_KEY]
    if energies.ndim != 2 or energies.shape[1] != 1:
        problems.append(f"{ENERGY_KEY} has shape {energies.shape}, expected (N, 1)")
    if showers.ndim != 2 or showers.shape[1] != geometry.n_voxels:
        problems.append(
            f"{SHOWER_KEY} has shape {showers.shape}, expected (N, {geometry.n_voxels})"
        )
    if energies.shape[0] != showers.shape[0]:
        problems.append(f"{energies.shape[0]} incident energies but {showers.shape[0]} showers")
    for key in (ENERGY_KEY, SHOWER_KEY):
        if f[key].dtype not in (np.float32, np.float64):
            problems.append(f"{key} has dtype {f[key].dtype}, expected float32 (or float64)")
    return problems


def _value_problems(energies: np.ndarray, showers: h5py.Dataset) -> list[str]:
    problems = []
    if not np.all(np.isfinite(energies) & (energies > 0)):
        problems.append("incident energies are not all positive finite numbers")
    n_bad = n_negative = 0
    ratios = []
    for start in range(0, showers.shape[0], _CHUNK):
        block = showers[start : start + _CHUNK].astype(np.float64)
        n_bad += int((~np.isfinite(block)).any(axis=1).sum())
        n_negative += int((block < 0).any(axis=1).sum())
        ratios.append(np.nansum(block, axis=1) / energies[start : start + _CHUNK])
    if n_bad:
        problems.append(f"{n_bad} showers contain NaN or inf")
    if n_negative:
        problems.append(f"{n_negative} showers contain negative voxel energies")
    median = float(np.median(np.concatenate(ratios))) if ratios else 1.0
    low, high = _PLAUSIBLE_RATIO
    if not low <= median <= high:
        problems.append(
            f"median deposited / incident energy is {median:.3g}: not MeV for both datasets?"
        )
    return problems


def check_submission(
    path: str | Path, geometry: CaloGeometry, request: str | Path | None = None
) -> SubmissionCheck:
    """Check a shower file against the challenge format, the geometry and the request's energies."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        problems = _dataset_problems(f, geometry)
        dtypes = {key: str(f[key].dtype) for key in (ENERGY_KEY, SHOWER_KEY) if key in f}
        n_events = f[ENERGY_KEY].shape[0] if ENERGY_KEY in f else 0
        if problems:
            return SubmissionCheck(str(path), n_events, dtypes, problems)
        energies = f[ENERGY_KEY][:, 0].astype(np.float64)
        problems += _value_problems(energies, f[SHOWER_KEY])
    if request is not None:
        with h5py.File(request, "r") as f:
            wanted = np.asarray(f[ENERGY_KEY]).reshape(-1).astype(np.float64)
        if wanted.shape != energies.shape:
            problems.append(f"{len(energies)} showers for a request of {len(wanted)}")
        elif not np.array_equal(wanted, energies):
            n_diff = int((wanted != energies).sum())
            problems.append(f"{n_diff} incident energies differ from the request's, in order")
    return SubmissionCheck(str(path), n_events, dtypes, problems)
