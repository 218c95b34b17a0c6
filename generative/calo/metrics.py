"""The CaloChallenge 2022 validation metrics, as pure functions.

- Separation power S = 1/2 sum_i (h1_i - h2_i)^2 / (h1_i + h2_i) of unit-normalised histograms with
  shared bins (0 for identical, 1 for disjoint distributions), per high-level feature.
- Classifier test (`generative.calo.classifier`): a network learns to tell reference from
  generated showers; its calibrated AUC and JSD on held-out events.
- Frechet and kernel physics distances (`generative.calo.distances`, FPD and KPD) on features
  scaled by their maxima, with the conventions of ``jetnet.evaluation``.

This module computes the separation powers and gathers the other metrics under one name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from generative.calo.classifier import ClassifierConfig, ClassifierTestResult, classifier_test
from generative.calo.distances import (
    DistanceResult,
    frechet_physics_distance,
    kernel_physics_distance,
)
from generative.calo.features import (
    DEFAULT_THRESHOLD_MEV,
    apply_threshold,
    feature_info,
    high_level_features,
)
from generative.calo.geometry import CaloGeometry
from generative.calo.io import ShowerData
from generative.validation import check_array

__all__ = [
    "ClassifierConfig",
    "ClassifierTestResult",
    "DistanceResult",
    "challenge_separation_powers",
    "classifier_test",
    "frechet_physics_distance",
    "histogram_edges",
    "kernel_physics_distance",
    "separation_power",
    "separation_power_histograms",
    "separation_powers",
]


# ----------------------------------------------------------------------------- separation power
def histogram_edges(
    reference: np.ndarray,
    generated: np.ndarray,
    n_bins: int = 50,
    *,
    log_scale: bool = False,
    clip_quantile: float = 0.001,
) -> np.ndarray:
    """Shared bin edges spanning both samples between their pooled `clip_quantile` quantiles.

    With `log_scale` the edges are log-spaced over the positive values (zeros fall in the first
    bin once `separation_power` clips them in).
    """
    if n_bins < 1 or not 0.0 <= clip_quantile < 0.5:
        raise ValueError(
            f"need n_bins >= 1 and 0 <= clip_quantile < 0.5, got {n_bins}, {clip_quantile}"
        )
    pooled = np.concatenate([np.ravel(reference), np.ravel(generated)]).astype(np.float64)
    if log_scale:
        pooled = pooled[pooled > 0]
    pooled = pooled[np.isfinite(pooled)]
    if pooled.size == 0:
        return np.linspace(0.0, 1.0, n_bins + 1)
    lo, hi = np.quantile(pooled, [clip_quantile, 1.0 - clip_quantile])
    if log_scale:
        lo, hi = np.log10(lo), np.log10(hi)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, n_bins + 1)
    return 10.0**edges if log_scale else edges


def separation_power_histograms(hist1: np.ndarray, hist2: np.ndarray) -> float:
    """Separation power of two histograms with the same bins (each normalised to unit sum here)."""
    h1, h2 = np.asarray(hist1, dtype=np.float64), np.asarray(hist2, dtype=np.float64)
    if h1.shape != h2.shape:
        raise ValueError(f"histograms have different bins: {h1.shape} vs {h2.shape}")
    if h1.sum() <= 0 or h2.sum() <= 0:
        raise ValueError("a histogram is empty; the separation power needs entries in both")
    h1, h2 = h1 / h1.sum(), h2 / h2.sum()
    return float(0.5 * np.sum((h1 - h2) ** 2 / (h1 + h2 + 1e-16)))


def separation_power(
    reference: np.ndarray, generated: np.ndarray, bins: int | np.ndarray = 50
) -> float:
    """Separation power of two samples in shared bins (an int: `histogram_edges`).

    Values outside the edges are counted in the first or last bin, so every event contributes.
    """
    ref = check_array(reference, "reference")[:, 0]
    gen = check_array(generated, "generated")[:, 0]
    edges = histogram_edges(ref, gen, bins) if np.isscalar(bins) else np.asarray(bins, float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("bins must be a positive int or increasing edges (at least 2)")
    clip = (edges[0], np.nextafter(edges[-1], -np.inf))
    h1, _ = np.histogram(np.clip(ref, *clip), edges)
    h2, _ = np.histogram(np.clip(gen, *clip), edges)
    return separation_power_histograms(h1, h2)


def separation_powers(
    reference: pd.DataFrame, generated: pd.DataFrame, *, n_bins: int = 50
) -> pd.Series:
    """Separation power of every column of `reference` (e.g. `high_level_features` tables).

    Known feature names get log-spaced bins where they span decades (energies).
    """
    missing = [c for c in reference.columns if c not in generated.columns]
    if missing:
        raise KeyError(f"generated features lack column(s) {missing}")
    values = {}
    for name in reference.columns:
        try:
            log_scale = feature_info(str(name)).log_scale
        except KeyError:
            log_scale = False
        ref, gen = reference[name].to_numpy(), generated[name].to_numpy()
        edges = histogram_edges(ref, gen, n_bins, log_scale=log_scale)
        values[name] = separation_power(ref, gen, edges)
    return pd.Series(values, name="separation_power", dtype=np.float64)


def _fixed_bins_power(reference: np.ndarray, generated: np.ndarray, edges: np.ndarray) -> float:
    # values outside the edges are dropped, as matplotlib's hist drops them in the challenge code
    h1 = np.histogram(reference, edges)[0]
    h2 = np.histogram(generated, edges)[0]
    if h1.sum() == 0 or h2.sum() == 0:
        return float("nan")
    return separation_power_histograms(h1, h2)


def challenge_separation_powers(
    reference: ShowerData,
    generated: ShowerData,
    geometry: CaloGeometry,
    *,
    threshold: float = DEFAULT_THRESHOLD_MEV,
) -> dict[str, float]:
    """Separation powers with the binnings of the challenge's ``evaluate.py --mode hist``.

    E_tot/E_inc: 100 bins on [0.5, 1.5], and 20 bins per incident energy 2^8 .. 2^22 MeV (on
    [0.4, 1.4], from the fifth energy on [0.9, 1.1] for photons); layer energies: 39 log bins
    from `threshold` to the reference maximum; centres of energy: 100 bins on +-100 mm (+-500
    for layers 12 and 13), widths on [0, 100] ([0, 400]) mm; voxel energies: 49 log bins from
    `threshold` to the reference maximum. Values outside the bins are not counted; a histogram
    without entries gives NaN, as in the challenge's code.
    """
    ref = high_level_features(reference, geometry, threshold=threshold)
    gen = high_level_features(generated, geometry, threshold=threshold)
    out = {
        "E_tot_over_E_inc": _fixed_bins_power(
            ref["E_tot_over_E_inc"], gen["E_tot_over_E_inc"], np.linspace(0.5, 1.5, 101)
        )
    }
    for lid in geometry.layer_ids:
        name = f"E_layer_{lid}"
        top = np.log10(max(float(ref[name].max()), threshold * 10))
        edges = np.logspace(np.log10(threshold), top, 40)
        out[name] = _fixed_bins_power(ref[name], gen[name], edges)
    wide = {12, 13}
    for kind in ("EC_eta", "EC_phi", "width_eta", "width_phi"):
        for lid in geometry.alpha_binned_layer_ids:
            half = 500.0 if lid in wide else 100.0
            low, high = (
                (-half, half) if kind.startswith("EC") else (0.0, 400.0 if lid in wide else 100.0)
            )
            name = f"{kind}_layer_{lid}"
            out[name] = _fixed_bins_power(ref[name], gen[name], np.linspace(low, high, 101))
    targets = 2.0 ** np.arange(8, 24)
    photons = geometry.particle == "photon"
    for i, energy in enumerate(targets[:-1]):
        edges = np.linspace(0.9, 1.1, 21) if i > 3 and photons else np.linspace(0.4, 1.4, 21)
        in_ref = (reference.energies >= energy) & (reference.energies < targets[i + 1])
        in_gen = (generated.energies >= energy) & (generated.energies < targets[i + 1])
        out[f"E_tot_over_E_inc_at_{int(energy)}_MeV"] = _fixed_bins_power(
            ref["E_tot_over_E_inc"][in_ref], gen["E_tot_over_E_inc"][in_gen], edges
        )
    ref_voxels = apply_threshold(reference.showers, threshold)
    top = np.log10(max(float(ref_voxels.max()), threshold * 10))
    out["voxel_energy"] = _fixed_bins_power(
        ref_voxels.ravel(),
        apply_threshold(generated.showers, threshold).ravel(),
        np.logspace(np.log10(threshold), top, 50),
    )
    return out
