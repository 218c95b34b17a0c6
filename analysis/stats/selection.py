"""Selections of a scan: per window and efficiency, the mjj spectrum of events above a cut.

The cut of each window keeps a fixed fraction of that window's own signal-region events; an
optional background reference in the signal region measures each cut's efficiency there, and
how well the scores separate it from the signal-region data (the input of its closure check).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from analysis.defaults import DEFAULT_EFFICIENCIES
from analysis.regions import Window, WindowBins, as_window
from analysis.stats.closure import Separation, separation
from analysis.stats.mismodelling import control_ratios

__all__ = [
    "ReferenceScores",
    "SelectedSpectra",
    "finite_events",
    "reference_efficiencies",
    "select_spectra",
]


class ReferenceScores(NamedTuple):
    """A window's background reference in the signal region: masses (TeV) and out-of-fold scores.

    `control`, where the detector measured it, is its control sample where no signal is
    expected (an `anomaly.results.ControlSample`: held-out data and the reference's model,
    scored), which measures each cut's mismodelling (`analysis.stats.mismodelling`).
    """

    mjj: np.ndarray
    scores: np.ndarray
    control: Any | None = None


@dataclass(frozen=True, eq=False)
class SelectedSpectra:
    """Inclusive and selected mjj histograms: counts[window, efficiency, bin]."""

    edges: np.ndarray
    windows: tuple[Window, ...]
    efficiencies: np.ndarray
    inclusive: np.ndarray
    counts: np.ndarray
    thresholds: np.ndarray
    #: (window, efficiency, bin) background efficiency of each cut measured on a reference
    #: sample in the signal region, and its binomial error; None: fit the selected sidebands
    reference_efficiency: np.ndarray | None = None
    reference_efficiency_error: np.ndarray | None = None
    #: per window, the separation of the signal-region data from the reference (for closure)
    separations: tuple[Separation, ...] | None = None
    #: (window, efficiency) data/reference pass ratio of each cut where no signal is expected
    #: and its error (`analysis.stats.mismodelling`); None: not measured
    control_ratio: np.ndarray | None = None
    control_error: np.ndarray | None = None

    def control(self, w: int, e: int) -> tuple[float, float]:
        """(ratio, error) of cell (w, e)'s reference mismodelling; (1, 0) when not measured."""
        if self.control_ratio is None:
            return 1.0, 0.0
        return float(self.control_ratio[w, e]), float(self.control_error[w, e])

    def control_measured(self, w: int) -> bool:
        """Whether window `w`'s reference mismodelling was measured (a nuisance in its cells)."""
        return self.control_ratio is not None and bool(np.any(self.control_error[w] > 0))

    def bins(self, w: int) -> WindowBins:
        """Signal-region and fit-sideband bins of window `w`."""
        return self.windows[w].bins(self.edges)

    def replace_counts(self, inclusive: np.ndarray, counts: np.ndarray) -> SelectedSpectra:
        """The same selections and calibration with other (e.g. pseudo-experiment) counts."""
        return dataclasses.replace(self, inclusive=inclusive, counts=counts)


def reference_efficiencies(
    thresholds: np.ndarray, references: Sequence[ReferenceScores], edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per window, cut and bin: the fraction of reference events above the cut, and its error.

    Bins without reference events get NaN; a signal-region bin without any is an error when
    the cell is modelled.
    """
    n_windows, n_effs = thresholds.shape
    if len(references) != n_windows:
        raise ValueError(f"need a reference sample for each of the {n_windows} windows")
    eff = np.full((n_windows, n_effs, edges.size - 1), np.nan)
    err = np.full_like(eff, np.nan)
    for w, reference in enumerate(references):
        mjj = np.asarray(reference.mjj, dtype=float)
        scores = np.asarray(reference.scores, dtype=float)
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


def _windows(
    windows: Sequence[Window | tuple[float, float]], edges: np.ndarray
) -> tuple[Window, ...]:
    """The windows as `Window`s, each checked to lie inside the binning."""
    if len(windows) == 0:
        raise ValueError("no windows given")
    out = tuple(as_window(w) for w in windows)
    for window in out:
        low, high = window.sr_low, window.sr_high
        if not edges[0] <= low < high <= edges[-1]:
            raise ValueError(
                f"window [{low}, {high}] lies outside the binning [{edges[0]}, {edges[-1]}]"
            )
    return out


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
    windows: Sequence[Window | tuple[float, float]],
    edges: np.ndarray,
    efficiencies: Sequence[float] = DEFAULT_EFFICIENCIES,
    references: Sequence[ReferenceScores] | None = None,
) -> SelectedSpectra:
    """Histogram the events passing each window's score threshold at each efficiency.

    `scores` is one array for all windows or one array per window (each window's own
    detector). The threshold keeps the top `efficiency` fraction of the window's
    signal-region events and is then applied to the whole spectrum. `references`, per window a
    background reference in the signal region, switch the background model of the selected
    signal region to the inclusive fit times the reference efficiency, scaled by the
    mismodelling measured on each reference's control sample (when it has one).
    """
    edges = np.asarray(edges, dtype=float)
    windows = _windows(windows, edges)
    scores = np.asarray(scores, dtype=float)
    scores = (
        np.broadcast_to(scores, (len(windows), scores.shape[-1])) if scores.ndim == 1 else scores
    )
    if scores.shape[0] != len(windows):
        raise ValueError(f"got scores for {scores.shape[0]} windows but {len(windows)} windows")
    mjj, scores = finite_events(mjj, scores)
    effs = np.asarray(efficiencies, dtype=float)
    if np.any((effs <= 0) | (effs > 1)):
        raise ValueError(f"efficiencies must lie in (0, 1], got {effs}")
    inclusive, _ = np.histogram(mjj, bins=edges)
    counts = np.zeros((len(windows), effs.size, edges.size - 1))
    thresholds = np.full((len(windows), effs.size), -np.inf)
    for w, window in enumerate(windows):
        sr_scores = scores[w, window.sr_mask(mjj)]
        too_few = effs * sr_scores.size < 1
        if too_few.any():
            raise ValueError(
                f"window [{window.sr_low}, {window.sr_high}]: efficiency {effs[too_few].min()} "
                f"selects less than one of its {sr_scores.size} signal-region events"
            )
        for e, eff in enumerate(effs):
            if eff < 1.0:
                thresholds[w, e] = np.quantile(sr_scores, 1.0 - eff)
            counts[w, e], _ = np.histogram(mjj[scores[w] > thresholds[w, e]], bins=edges)
    spectra = SelectedSpectra(edges, windows, effs, inclusive.astype(float), counts, thresholds)
    if references is None:
        return spectra
    eff, err = reference_efficiencies(thresholds, references, edges)
    separations = tuple(
        separation(scores[w, window.sr_mask(mjj)], np.asarray(ref.scores, dtype=float))
        for w, (window, ref) in enumerate(zip(windows, references, strict=True))
    )
    measured = control_ratios(thresholds, [ref.control for ref in references])
    ratio, error = (None, None) if measured is None else measured
    return dataclasses.replace(
        spectra,
        reference_efficiency=eff,
        reference_efficiency_error=err,
        separations=separations,
        control_ratio=ratio,
        control_error=error,
    )
