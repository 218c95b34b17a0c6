"""Global p-values beyond the reach of pseudo-experiments: upcrossings (Gross and Vitells).

Gross and Vitells (arXiv:1005.1891) and Vitells and Gross (arXiv:1105.4355): the mean number
of excursions of the local significance map above a threshold z, counted as connected cells on
the window x efficiency grid, is fitted at low thresholds by Phi(-z) + (N1 + N2 z)
exp(-z^2 / 2) and evaluated at the observed maximum; its uncertainty comes from a bootstrap
over the pseudo-experiments. That expectation bounds the global p-value from above, and so
does the Bonferroni bound n_cells * Phi(-z); the smaller one is reported, named.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special, stats

__all__ = [
    "EXTRAPOLATION_THRESHOLDS",
    "GlobalExtrapolation",
    "excursion_counts",
    "extrapolate_global",
]

#: thresholds (local Z) at which excursions are counted for the extrapolation
EXTRAPOLATION_THRESHOLDS = (0.5, 1.0, 1.5, 2.0)


def excursion_counts(maps: np.ndarray, thresholds) -> np.ndarray:
    """Connected excursions {Z > u} of each (windows, efficiencies) map, (n_maps, n_thresholds).

    Neighbouring windows at one efficiency and neighbouring efficiencies of one window are
    connected; untested cells (NaN) lie below every threshold.
    """
    maps = np.nan_to_num(np.asarray(maps, dtype=float), nan=-np.inf)
    out = np.zeros((maps.shape[0], len(thresholds)), int)
    for k, u in enumerate(thresholds):
        above = maps > u
        for i in np.flatnonzero(above.any(axis=(1, 2))):
            out[i, k] = ndimage.label(above[i])[1]
    return out


@dataclass(frozen=True)
class GlobalExtrapolation:
    """Upcrossing (Euler characteristic) extrapolation of the global p-value to local Z `z`."""

    z: float
    p_value: float
    p_value_error: float
    significance: float
    significance_error: float
    n1: float
    n2: float
    bonferroni_p_value: float
    method: str


def _gv_coefficients(mean_counts: np.ndarray, thresholds: np.ndarray, weights) -> np.ndarray:
    """Least-squares (N1, N2) of E[N(u)] - Phi(-u) = (N1 + N2 u) exp(-u^2 / 2)."""
    basis = np.exp(-0.5 * thresholds**2)
    design = np.stack([basis, thresholds * basis], axis=1) * weights[:, None]
    target = (mean_counts - special.ndtr(-thresholds)) * weights
    return np.linalg.lstsq(design, target.T, rcond=None)[0]


def _gv_p(z: float, coefficients: np.ndarray) -> np.ndarray:
    return special.ndtr(-z) + (coefficients[0] + coefficients[1] * z) * np.exp(-0.5 * z**2)


def extrapolate_global(
    maps: np.ndarray,
    z: float,
    n_cells: int,
    thresholds=EXTRAPOLATION_THRESHOLDS,
    n_bootstrap: int = 200,
    random_state: int | np.random.SeedSequence | None = None,
) -> GlobalExtrapolation:
    """Global p-value of local significance `z` from the excursions of null `maps`.

    `maps` are (n_pseudo, windows, efficiencies) signed local Z of background-only
    pseudo-experiments. The result is the smaller of the Gross-Vitells expectation and the
    Bonferroni bound `n_cells` Phi(-z), named in `method` (the bound when the expectation
    falls below the local p-value Phi(-z), which no global p-value can); a bootstrap over
    the maps gives the Gross-Vitells uncertainty (zero for the Bonferroni bound, which is
    exact as a bound).
    """
    thresholds = np.asarray(thresholds, dtype=float)
    counts = excursion_counts(maps, thresholds).astype(float)
    n = counts.shape[0]
    mean = counts.mean(axis=0)
    # Poisson-like weights: the spread of each mean count.
    weights = 1.0 / np.maximum(counts.std(axis=0) / np.sqrt(n), 1e-3)
    coefficients = _gv_coefficients(mean, thresholds, weights)
    p_gv = float(_gv_p(z, coefficients))
    rng = np.random.default_rng(random_state)
    draws = rng.integers(0, n, (n_bootstrap, n))
    boot = np.array([_gv_coefficients(counts[d].mean(axis=0), thresholds, weights) for d in draws])
    p_boot = _gv_p(z, boot.T)
    p_bonferroni = float(min(1.0, n_cells * special.ndtr(-z)))
    # A fit whose slope turns the expectation below the local p-value (N1 + N2 z < 0 far beyond
    # the fitted thresholds) bounds nothing: the global p-value is never below the local one.
    if p_bonferroni < p_gv or p_gv < special.ndtr(-z):
        p, error, method = p_bonferroni, 0.0, "bonferroni"
    else:
        p, error, method = p_gv, float(np.std(p_boot)), "gross-vitells"
    # An expectation above 1 bounds nothing: the p-value is then 1 (global Z -> -inf).
    p = float(np.clip(p, 1e-300, 1.0))
    z_global = float(stats.norm.isf(p))
    z_boot = stats.norm.isf(np.clip(p_boot, 1e-300, 1.0 - 1e-12))
    z_error = float(np.std(z_boot)) if error else 0.0
    return GlobalExtrapolation(
        z=float(z),
        p_value=p,
        p_value_error=error,
        significance=z_global,
        significance_error=z_error,
        n1=float(coefficients[0]),
        n2=float(coefficients[1]),
        bonferroni_p_value=p_bonferroni,
        method=method,
    )
