"""Selections of a scan: per window and efficiency, the mjj spectrum of events above a cut.

The cut of each window keeps a fixed fraction of that window's own signal-region events; an
optional background reference in the signal region measures each cut's efficiency there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.defaults import DEFAULT_EFFICIENCIES
from analysis.stats.models import window_bounds

__all__ = [
    "EFFICIENCIES",
    "SelectedSpectra",
    "finite_events",
    "reference_efficiencies",
    "select_spectra",
]

EFFICIENCIES = DEFAULT_EFFICIENCIES


@dataclass(frozen=True, eq=False)
class SelectedSpectra:
    """Inclusive and selected mjj histograms: counts[window, efficiency, bin]."""

    edges: np.ndarray
    windows: np.ndarray
    efficiencies: np.ndarray
    inclusive: np.ndarray
    counts: np.ndarray
    thresholds: np.ndarray
    #: (window, efficiency, bin) background efficiency of each cut measured on a reference
    #: sample in the signal region, and its binomial error; None: fit the selected sidebands
    reference_efficiency: np.ndarray | None = None
    reference_efficiency_error: np.ndarray | None = None

    def replace_counts(self, inclusive: np.ndarray, counts: np.ndarray) -> SelectedSpectra:
        """The same selections and calibration with other (e.g. pseudo-experiment) counts."""
        return dataclasses.replace(self, inclusive=inclusive, counts=counts)


def reference_efficiencies(
    thresholds: np.ndarray,
    reference_mjj: Sequence[np.ndarray],
    reference_scores: Sequence[np.ndarray],
    edges: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per window, cut and bin: the fraction of reference events above the cut, and its error.

    Bins without reference events get NaN; a signal-region bin without any is an error when
    the cell is modelled.
    """
    n_windows, n_effs = thresholds.shape
    if len(reference_mjj) != n_windows or len(reference_scores) != n_windows:
        raise ValueError(f"need a reference sample for each of the {n_windows} windows")
    eff = np.full((n_windows, n_effs, edges.size - 1), np.nan)
    err = np.full_like(eff, np.nan)
    for w in range(n_windows):
        mjj = np.asarray(reference_mjj[w], dtype=float)
        scores = np.asarray(reference_scores[w], dtype=float)
        if mjj.shape != scores.shape:
            raise ValueError(f"window {w}: reference mjj {mjj.shape} and scores {scores.shape}")
        total, _ = np.histogram(mjj, bins=edges)
        for e in range(n_effs):
            passed, _ = np.histogram(mjj[scores > thresholds[w, e]], bins=edges)
            ok = total > 0
            eff[w, e, ok] = passed[ok] / total[ok]
            # At least one event's worth of error: an empty pass count is not a certainty.
            p = np.maximum(passed[ok], 1.0) / total[ok]
            err[w, e, ok] = np.sqrt(p * (1 - np.minimum(p, 1.0)) / total[ok])
    return eff, err


def _window_table(windows: Sequence[Any], edges: np.ndarray) -> np.ndarray:
    """(n_windows, 4): sr_low, sr_high and the fit range (sb_low/sb_high, else all bins)."""
    if len(windows) == 0:
        raise ValueError("no windows given")
    rows = []
    for window in windows:
        low, high = window_bounds(window)
        fit_low = float(getattr(window, "sb_low", edges[0]))
        fit_high = float(getattr(window, "sb_high", edges[-1]))
        if not edges[0] <= low < high <= edges[-1]:
            raise ValueError(
                f"window [{low}, {high}] lies outside the binning [{edges[0]}, {edges[-1]}]"
            )
        rows.append((low, high, fit_low, fit_high))
    return np.asarray(rows)


def finite_events(mjj: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mjj and (n_sets, n_events) scores, checked for matching length and finite values."""
    mjj = np.asarray(mjj, dtype=float)
    if mjj.ndim != 1 or scores.shape[-1] != mjj.size:
        raise ValueError(f"scores {scores.shape} must end with the number of events {mjj.shape}")
    bad_mjj = ~np.isfinite(mjj)
    bad_scores = ~np.all(np.isfinite(scores), axis=0)
    if bad_mjj.any() or bad_scores.any():
        raise ValueError(
            f"{int(bad_mjj.sum())} events have NaN/inf mjj, {int(bad_scores.sum())} NaN/inf scores"
        )
    return mjj, scores


def select_spectra(
    mjj: np.ndarray,
    scores: np.ndarray | Sequence[np.ndarray],
    windows: Sequence[Any],
    edges: np.ndarray,
    efficiencies: Sequence[float] = EFFICIENCIES,
    reference: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
) -> SelectedSpectra:
    """Histogram the events passing each window's score threshold at each efficiency.

    `scores` is one array for all windows or one array per window (each window's own
    detector). The threshold keeps the top `efficiency` fraction of the window's
    signal-region events and is then applied to the whole spectrum. `reference`, per window
    (mjj, scores) of a background reference in the signal region, switches the background
    model of the selected signal region to the inclusive fit times the reference efficiency.
    """
    edges = np.asarray(edges, dtype=float)
    table = _window_table(windows, edges)
    scores = np.asarray(scores, dtype=float)
    scores = np.broadcast_to(scores, (len(table), scores.shape[-1])) if scores.ndim == 1 else scores
    if scores.shape[0] != len(table):
        raise ValueError(f"got scores for {scores.shape[0]} windows but {len(table)} windows")
    mjj, scores = finite_events(mjj, scores)
    effs = np.asarray(efficiencies, dtype=float)
    if np.any((effs <= 0) | (effs > 1)):
        raise ValueError(f"efficiencies must lie in (0, 1], got {effs}")
    inclusive, _ = np.histogram(mjj, bins=edges)
    counts = np.zeros((len(table), effs.size, edges.size - 1))
    thresholds = np.full((len(table), effs.size), -np.inf)
    for w, (low, high, _, _) in enumerate(table):
        sr_scores = scores[w, (mjj >= low) & (mjj < high)]
        too_few = effs * sr_scores.size < 1
        if too_few.any():
            raise ValueError(
                f"window [{low}, {high}]: efficiency {effs[too_few].min()} selects less than one "
                f"of its {sr_scores.size} signal-region events"
            )
        for e, eff in enumerate(effs):
            if eff < 1.0:
                thresholds[w, e] = np.quantile(sr_scores, 1.0 - eff)
            counts[w, e], _ = np.histogram(mjj[scores[w] > thresholds[w, e]], bins=edges)
    spectra = SelectedSpectra(edges, table, effs, inclusive.astype(float), counts, thresholds)
    if reference is None:
        return spectra
    eff, err = reference_efficiencies(thresholds, reference[0], reference[1], edges)
    return dataclasses.replace(spectra, reference_efficiency=eff, reference_efficiency_error=err)
