"""High-level shower features as the CaloChallenge evaluation defines them.

Per shower: the total energy over the incident energy and, per layer, the deposited energy; in
layers with angular bins, the centre of energy in x ("eta") and y ("phi") and the widths
(energy-weighted standard deviations) around it; per layer the sparsity, the fraction of voxels
without energy, and the centre of energy in r (radial bin centres) with its width. Voxels below
a readout threshold (1 MeV in the official dataset-1 evaluation) are zeroed first. An empty
layer has centre and width 0, as in the challenge's code. The classifier test's input arrays
(`low_level_inputs`, `high_level_inputs`) are built here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from generative.calo.geometry import CaloGeometry
from generative.calo.io import ShowerData

__all__ = [
    "DEFAULT_THRESHOLD_MEV",
    "FeatureInfo",
    "LayerCentroid",
    "apply_threshold",
    "centres_and_widths",
    "feature_info",
    "high_level_features",
    "high_level_inputs",
    "layer_energies",
    "layer_sparsity",
    "low_level_inputs",
    "radial_centre_and_width",
]

#: the official dataset-1 evaluation zeroes voxels below this energy (MeV) before any metric
DEFAULT_THRESHOLD_MEV = 1.0
#: events per chunk are chosen to keep about this many voxel values in memory at once
_CHUNK_VALUES = 20_000_000


def apply_threshold(showers: np.ndarray, threshold: float = DEFAULT_THRESHOLD_MEV) -> np.ndarray:
    """A copy of `showers` with every voxel below `threshold` (MeV) set to 0."""
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite energy >= 0 MeV, got {threshold}")
    out = np.array(showers, dtype=np.float64)
    out[out < threshold] = 0.0
    return out


def layer_energies(showers: np.ndarray, geometry: CaloGeometry) -> np.ndarray:
    """Energy in each non-empty layer, shape (N, n_layers), in `geometry.layer_ids` order."""
    showers = _check_showers(showers, geometry)
    return np.stack([showers[:, sl].sum(axis=1) for sl in geometry.layer_slices.values()], axis=1)


def layer_sparsity(showers: np.ndarray, geometry: CaloGeometry) -> np.ndarray:
    """Fraction of voxels with zero energy in each non-empty layer, shape (N, n_layers)."""
    showers = _check_showers(showers, geometry)
    return np.stack(
        [(showers[:, sl] == 0).mean(axis=1) for sl in geometry.layer_slices.values()], axis=1
    )


class LayerCentroid(NamedTuple):
    """Per-shower centre of energy of one layer and the widths around it (mm)."""

    x: np.ndarray
    y: np.ndarray
    width_x: np.ndarray
    width_y: np.ndarray


def centres_and_widths(showers: np.ndarray, geometry: CaloGeometry, layer_id: int) -> LayerCentroid:
    """Centre of energy in x ("eta") and y ("phi") of one layer and the widths around it."""
    showers = _check_showers(showers, geometry)
    if layer_id not in geometry.layer_slices:
        raise KeyError(f"layer {layer_id} has no voxels; layers with voxels: {geometry.layer_ids}")
    sl = geometry.layer_slices[layer_id]
    energy = showers[:, sl]
    x, y = geometry.voxel_x[sl], geometry.voxel_y[sl]
    # the challenge's regulator: an empty layer gets centre 0 and width 0 instead of NaN
    total = energy.sum(axis=1) + 1e-16
    cx, cy = energy @ x / total, energy @ y / total
    wx = np.sqrt(np.clip(energy @ (x * x) / total - cx**2, 0.0, None))
    wy = np.sqrt(np.clip(energy @ (y * y) / total - cy**2, 0.0, None))
    return LayerCentroid(cx, cy, wx, wy)


def radial_centre_and_width(
    showers: np.ndarray, geometry: CaloGeometry, layer_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Energy-weighted mean radius of one layer (radial bin centres, mm) and the width around it."""
    showers = _check_showers(showers, geometry)
    sl = geometry.layer_slices[layer_id]
    energy, r = showers[:, sl], geometry.voxel_r[sl]
    total = energy.sum(axis=1) + 1e-16
    centre = energy @ r / total
    return centre, np.sqrt(np.clip(energy @ (r * r) / total - centre**2, 0.0, None))


def _check_showers(showers: np.ndarray, geometry: CaloGeometry) -> np.ndarray:
    showers = np.asarray(showers, dtype=np.float64)
    if showers.ndim != 2 or showers.shape[1] != geometry.n_voxels:
        raise ValueError(
            f"showers must have shape (N, {geometry.n_voxels}) for the {geometry.particle!r} "
            f"geometry, got {showers.shape}"
        )
    return showers


def _chunk_features(
    energies: np.ndarray, showers: np.ndarray, geometry: CaloGeometry, threshold: float
) -> dict[str, np.ndarray]:
    showers = apply_threshold(showers, threshold)
    e_layer = layer_energies(showers, geometry)
    e_tot = showers.sum(axis=1)
    cols: dict[str, np.ndarray] = {"E_tot_over_E_inc": e_tot / energies, "E_tot": e_tot}
    for i, lid in enumerate(geometry.layer_ids):
        cols[f"E_layer_{lid}"] = e_layer[:, i]
    per_layer = {
        lid: centres_and_widths(showers, geometry, lid) for lid in geometry.alpha_binned_layer_ids
    }
    for k, kind in enumerate(("EC_eta", "EC_phi", "width_eta", "width_phi")):
        for lid, values in per_layer.items():
            cols[f"{kind}_layer_{lid}"] = values[k]
    sparsity = layer_sparsity(showers, geometry)
    for i, lid in enumerate(geometry.layer_ids):
        cols[f"sparsity_layer_{lid}"] = sparsity[:, i]
    radial = {lid: radial_centre_and_width(showers, geometry, lid) for lid in geometry.layer_ids}
    for k, kind in enumerate(("EC_r", "width_r")):
        for lid, values in radial.items():
            cols[f"{kind}_layer_{lid}"] = values[k]
    return cols


def high_level_features(
    data: ShowerData, geometry: CaloGeometry, *, threshold: float = DEFAULT_THRESHOLD_MEV
) -> pd.DataFrame:
    """Table of the high-level features of every shower (one row per event, named columns).

    Columns: ``E_tot_over_E_inc``, ``E_tot`` (MeV), ``E_layer_<id>`` (MeV), ``EC_eta_layer_<id>``,
    ``EC_phi_layer_<id>``, ``width_eta_layer_<id>``, ``width_phi_layer_<id>`` (mm, layers with
    angular bins), ``sparsity_layer_<id>``, ``EC_r_layer_<id>`` and ``width_r_layer_<id>`` (mm),
    after zeroing voxels below `threshold` MeV.
    """
    if not isinstance(data, ShowerData):
        raise TypeError(f"data must be a ShowerData, got {type(data).__name__}")
    data.check_geometry(geometry)
    if len(data) == 0:
        raise ValueError("no showers to compute features of (0 events)")
    chunk = max(1, _CHUNK_VALUES // geometry.n_voxels)
    parts = [
        _chunk_features(
            data.energies[s : s + chunk].astype(np.float64),
            data.showers[s : s + chunk],
            geometry,
            threshold,
        )
        for s in range(0, len(data), chunk)
    ]
    return pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def low_level_inputs(data: ShowerData, *, threshold: float = DEFAULT_THRESHOLD_MEV) -> np.ndarray:
    """The challenge's low-level classifier inputs: [log10 E_inc, voxel energies / E_inc]."""
    energies = data.energies.astype(np.float64)[:, None]
    showers = apply_threshold(data.showers, threshold) / energies
    return np.concatenate([np.log10(energies), showers], axis=1)


def high_level_inputs(features: pd.DataFrame, energies: np.ndarray) -> np.ndarray:
    """The challenge's `cls-high` inputs from a `high_level_features` table, in its order.

    [log10 E_inc, log10(E_layer + 1e-8), centres in eta and phi / 100, widths in eta and phi /
    100, log10(E_tot + 1e-8), sparsities, radial centres / 100, radial widths / 100] (lengths
    in mm), as ``prepare_high_data_for_classifier`` of the challenge's ``evaluate.py``.
    """
    energies = np.asarray(energies, dtype=np.float64).reshape(-1)
    if energies.shape[0] != len(features):
        raise ValueError(f"{energies.shape[0]} incident energies for {len(features)} feature rows")
    blocks = (
        ("E_layer_", lambda x: np.log10(x + 1e-8)),
        ("EC_eta_", lambda x: x / 100.0),
        ("EC_phi_", lambda x: x / 100.0),
        ("width_eta_", lambda x: x / 100.0),
        ("width_phi_", lambda x: x / 100.0),
        ("E_tot", lambda x: np.log10(x + 1e-8)),
        ("sparsity_", lambda x: x),
        ("EC_r_", lambda x: x / 100.0),
        ("width_r_", lambda x: x / 100.0),
    )
    cols = [np.log10(energies)]
    for prefix, transform in blocks:
        names = [n for n in features.columns if n == prefix or str(n).startswith(prefix)]
        names = [n for n in names if n != "E_tot_over_E_inc"]
        cols += [transform(features[n].to_numpy(np.float64)) for n in names]
    if len(cols) == 1:
        raise KeyError("the features table has none of the high-level feature columns")
    return np.stack(cols, axis=1)


@dataclass(frozen=True)
class FeatureInfo:
    """How to show a feature: axis label, unit and whether it spans decades (log axis)."""

    label: str
    unit: str
    log_scale: bool


_PATTERNS: tuple[tuple[str, str, str, bool], ...] = (
    (r"E_tot_over_E_inc", r"$E_\mathrm{tot} / E_\mathrm{inc}$", "", False),
    (r"E_tot", r"$E_\mathrm{tot}$", "MeV", True),
    (r"E_layer_(\d+)", r"$E$ in layer <id>", "MeV", True),
    (r"EC_eta_layer_(\d+)", r"centre of energy in $\eta$ (x), layer <id>", "mm", False),
    (r"EC_phi_layer_(\d+)", r"centre of energy in $\phi$ (y), layer <id>", "mm", False),
    (r"width_eta_layer_(\d+)", r"width in $\eta$ (x), layer <id>", "mm", False),
    (r"width_phi_layer_(\d+)", r"width in $\phi$ (y), layer <id>", "mm", False),
    (r"sparsity_layer_(\d+)", r"sparsity (fraction of empty voxels), layer <id>", "", False),
    (r"EC_r_layer_(\d+)", r"centre of energy in $r$, layer <id>", "mm", False),
    (r"width_r_layer_(\d+)", r"width in $r$, layer <id>", "mm", False),
)


def feature_info(name: str) -> FeatureInfo:
    """Label, unit and axis scale of a column of `high_level_features`."""
    for pattern, label, unit, log_scale in _PATTERNS:
        match = re.fullmatch(pattern, name)
        if match:
            layer = match.group(1) if match.groups() else ""
            return FeatureInfo(label.replace("<id>", layer), unit, log_scale)
    raise KeyError(f"{name!r} is not a high-level feature name")
