"""Performance metrics of anomaly scores on labelled test events: ROC, AUC, SIC, rejection.

All functions are pure. Conventions: signal efficiency eps_S (true-positive rate), background
efficiency eps_B (false-positive rate), SIC = eps_S / sqrt(eps_B), rejection = 1 / eps_B. The
maximum SIC and the rejection are taken only where at least `min_background` test-background
events survive the cut, because SIC or 1/eps_B at a handful of surviving background events is a
fluctuation, not a property of the method; the floor used is part of every result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sklearn import metrics as skm

__all__ = [
    "DEFAULT_MIN_BACKGROUND",
    "MaxSIC",
    "Metrics",
    "RocCurve",
    "SicCurve",
    "auc",
    "compute_metrics",
    "max_sic",
    "rejection_at",
    "roc_curve",
    "sic_curve",
]

#: default floor on the surviving test-background events for the max SIC
DEFAULT_MIN_BACKGROUND = 50


class RocCurve(NamedTuple):
    """Efficiencies of every distinct cut `score >= threshold`, loosest last."""

    eps_b: np.ndarray
    eps_s: np.ndarray
    thresholds: np.ndarray
    n_background: int
    n_signal: int


class SicCurve(NamedTuple):
    """SIC as a function of the signal efficiency; NaN where eps_B = 0."""

    eps_s: np.ndarray
    eps_b: np.ndarray
    sic: np.ndarray
    n_background_selected: np.ndarray


class MaxSIC(NamedTuple):
    """The largest SIC among cuts keeping at least `min_background` test-background events."""

    value: float
    eps_s: float
    eps_b: float
    threshold: float
    min_background: int


def _check(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.shape != y.shape:
        raise ValueError(
            f"y_true and scores must be 1-D of equal length, got {y.shape} and {s.shape}"
        )
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold 0 (background) and 1 (signal)")
    n_bad = int((~np.isfinite(s)).sum())
    if n_bad:
        raise ValueError(f"scores contain NaN/inf in {n_bad} of {len(s)} events")
    n_signal = int(y.sum())
    if n_signal == 0 or n_signal == len(y):
        raise ValueError(
            f"need both signal and background test events, got {n_signal} signal and "
            f"{len(y) - n_signal} background"
        )
    return y.astype(np.int64), s


def roc_curve(y_true: Any, scores: Any) -> RocCurve:
    """ROC curve of `scores` (higher = more signal-like) on labels 0/1."""
    y, s = _check(y_true, scores)
    fpr, tpr, thresholds = skm.roc_curve(y, s, drop_intermediate=False)
    n_signal = int(y.sum())
    # sklearn's first point is the empty selection (threshold +inf): no cut keeps nothing.
    return RocCurve(fpr[1:], tpr[1:], thresholds[1:], len(y) - n_signal, n_signal)


def auc(y_true: Any, scores: Any) -> float:
    """Area under the ROC curve (0.5 = random, 1 = perfect separation)."""
    y, s = _check(y_true, scores)
    return float(skm.roc_auc_score(y, s))


def sic_curve(y_true: Any, scores: Any) -> SicCurve:
    """SIC = eps_S / sqrt(eps_B) of every cut, with the number of surviving background events."""
    roc = roc_curve(y_true, scores)
    with np.errstate(divide="ignore", invalid="ignore"):
        sic = np.where(roc.eps_b > 0, roc.eps_s / np.sqrt(roc.eps_b), np.nan)
    n_selected = np.rint(roc.eps_b * roc.n_background).astype(np.int64)
    return SicCurve(roc.eps_s, roc.eps_b, sic, n_selected)


def max_sic(y_true: Any, scores: Any, *, min_background: int = DEFAULT_MIN_BACKGROUND) -> MaxSIC:
    """Maximum SIC over cuts that keep at least `min_background` test-background events."""
    if min_background < 1:
        raise ValueError(f"min_background must be at least 1, got {min_background}")
    roc = roc_curve(y_true, scores)
    if roc.n_background < min_background:
        raise ValueError(
            f"only {roc.n_background} background test events, fewer than the floor "
            f"min_background={min_background}"
        )
    sic = sic_curve(y_true, scores)
    allowed = sic.n_background_selected >= min_background
    best = int(np.nanargmax(np.where(allowed, sic.sic, -np.inf)))
    return MaxSIC(
        float(sic.sic[best]),
        float(sic.eps_s[best]),
        float(sic.eps_b[best]),
        float(roc.thresholds[best]),
        int(min_background),
    )


def rejection_at(y_true: Any, scores: Any, eps_s: float, *, min_background: int = 1) -> float:
    """Background rejection 1/eps_B of the tightest cut with signal efficiency >= `eps_s`.

    NaN (not measurable on this test set) if that cut keeps fewer than `min_background`
    test-background events: 3460 measured on 8 surviving events is not a rejection.
    """
    if not 0 < eps_s <= 1:
        raise ValueError(f"eps_s must be in (0, 1], got {eps_s}")
    if min_background < 1:
        raise ValueError(f"min_background must be at least 1, got {min_background}")
    roc = roc_curve(y_true, scores)
    first = int(np.searchsorted(roc.eps_s, eps_s, side="left"))
    eps_b = roc.eps_b[min(first, len(roc.eps_b) - 1)]
    surviving = eps_b * roc.n_background
    return float(np.nan) if surviving < min_background - 1e-9 else float(1.0 / eps_b)


@dataclass(frozen=True)
class Metrics:
    """The standard summary of a detector on a labelled test set."""

    auc: float
    max_sic: float
    max_sic_eps_s: float
    max_sic_eps_b: float
    min_background: int
    rejection_at_eps_s_0p2: float
    rejection_at_eps_s_0p5: float
    n_signal: int
    n_background: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (a rejection below the floor, NaN, becomes None)."""
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in dataclasses.asdict(self).items()
        }


def compute_metrics(
    y_true: Any, scores: Any, *, min_background: int = DEFAULT_MIN_BACKGROUND
) -> Metrics:
    """AUC, max SIC (with its floor), rejections at eps_S = 0.2 and 0.5 of one score."""
    y, s = _check(y_true, scores)
    best = max_sic(y, s, min_background=min_background)
    return Metrics(
        auc=auc(y, s),
        max_sic=best.value,
        max_sic_eps_s=best.eps_s,
        max_sic_eps_b=best.eps_b,
        min_background=best.min_background,
        rejection_at_eps_s_0p2=rejection_at(y, s, 0.2, min_background=min_background),
        rejection_at_eps_s_0p5=rejection_at(y, s, 0.5, min_background=min_background),
        n_signal=int(y.sum()),
        n_background=int(len(y) - y.sum()),
    )
