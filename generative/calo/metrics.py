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
from generative.calo.features import feature_info
from generative.validation import check_array

__all__ = [
    "ClassifierConfig",
    "ClassifierTestResult",
    "DistanceResult",
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
