"""What each cell of a search on labelled data selects, and what its fit makes of the background.

On data with truth labels (injected signal, simulation) every (window, efficiency) cell counts
the signal and the background its selection passes in the signal region and in the sidebands.
It also refits the cell's background model on the selected background alone. That fit's
signal-region prediction, against the true selected background, measures what the selection
and the fit do to a spectrum without signal (sculpting), apart from the signal that leaks into
the sidebands and that the real fit reads as background.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.stats import ScanConfig, SelectedSpectra, scan_spectra
from analysis.store import JSON

__all__ = ["CELL_COUNTS", "CellTruth", "background_fit_bias", "cell_truth"]


#: the per-cell counts of a `CellTruth`, by label and region
CELL_COUNTS = (
    "signal_selected_in_sr",
    "background_selected_in_sr",
    "signal_selected_in_sidebands",
    "background_selected_in_sidebands",
)


@dataclass(frozen=True)
class CellTruth:
    """Per window (and efficiency) what the selections pass by truth label."""

    #: (windows,) signal events in each signal region
    signal_in_sr: np.ndarray
    #: (windows, efficiencies) events passing each cell's selection, by label and region
    signal_selected_in_sr: np.ndarray
    background_selected_in_sr: np.ndarray
    signal_selected_in_sidebands: np.ndarray
    background_selected_in_sidebands: np.ndarray
    #: (windows, efficiencies) the cell's background model refitted on its selected background
    #: alone: its signal-region prediction (NaN where that fit is refused)
    background_only_fit_sr: np.ndarray

    @classmethod
    def from_dict(cls, record: JSON) -> CellTruth:
        """The truth of a `to_dict` record (a results.json `truth` entry)."""
        fit = [
            [np.nan if v is None else v for v in row] for row in record["background_only_fit_sr"]
        ]
        return cls(
            signal_in_sr=np.asarray(record["signal_in_sr"], int),
            **{key: np.asarray(record[key], int) for key in CELL_COUNTS},
            background_only_fit_sr=np.asarray(fit, float),
        )

    def at(self, w: int, e: int) -> dict[str, float | None]:
        """Cell (w, e): its window's signal, its counts and its background-alone fit (or None)."""
        fit = self.background_only_fit_sr[w, e]
        return {
            "signal_in_sr": int(self.signal_in_sr[w]),
            **{key: int(getattr(self, key)[w, e]) for key in CELL_COUNTS},
            "background_only_fit_sr": None if np.isnan(fit) else float(fit),
        }

    def to_dict(self) -> JSON:
        """JSON-compatible record (the `truth` entry of results.json)."""
        fit = self.background_only_fit_sr
        return {
            "signal_in_sr": self.signal_in_sr.tolist(),
            **{key: getattr(self, key).tolist() for key in CELL_COUNTS},
            "background_only_fit_sr": [
                [None if np.isnan(v) else float(v) for v in row] for row in fit
            ],
        }


def background_fit_bias(truths: Sequence[CellTruth]) -> np.ndarray:
    """Per efficiency, the median over windows (and searches) of fitted over true background.

    Both are the selected background alone in the signal region: the ratio is what the
    selection and the sideband fit do to a spectrum without signal (1: no bias; below 1: the
    fit predicts less than the selection keeps, a sculpted excess). NaN where no cell has both.
    """
    if not truths:
        raise ValueError("need the truth of at least one search")
    ratios = []
    for truth in truths:
        true = truth.background_selected_in_sr.astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append(np.where(true > 0, truth.background_only_fit_sr / true, np.nan))
    stacked = np.concatenate(ratios)
    return np.array(
        [np.median(c[np.isfinite(c)]) if np.isfinite(c).any() else np.nan for c in stacked.T]
    )


def cell_truth(
    mjj: np.ndarray,
    signal: np.ndarray,
    scores: np.ndarray,
    spectra: SelectedSpectra,
    config: ScanConfig,
) -> CellTruth:
    """The truth of every cell of `spectra` from the events' masses, labels and window scores.

    `signal` is True for signal events; `scores` is (windows, events), the scores the cells'
    thresholds cut on.
    """
    mjj, signal, scores = np.asarray(mjj, float), np.asarray(signal, bool), np.asarray(scores)
    n_windows, n_effs = spectra.thresholds.shape
    if signal.shape != mjj.shape or scores.shape != (n_windows, mjj.size):
        raise ValueError(
            f"need labels like mjj {mjj.shape} and ({n_windows}, {mjj.size}) scores, got "
            f"{signal.shape} and {scores.shape}"
        )
    counts = {key: np.zeros((n_windows, n_effs), int) for key in CELL_COUNTS}
    signal_in_sr = np.zeros(n_windows, int)
    background_counts = np.zeros_like(spectra.counts)
    for w, window in enumerate(spectra.windows):
        sr, sb = window.sr_mask(mjj), window.sb_mask(mjj)
        signal_in_sr[w] = np.sum(sr & signal)
        # in the order of CELL_COUNTS: signal and background, in the SR and in the sidebands
        masks = (sr & signal, sr & ~signal, sb & signal, sb & ~signal)
        for e, threshold in enumerate(spectra.thresholds[w]):
            passed = scores[w] > threshold
            for key, mask in zip(CELL_COUNTS, masks, strict=True):
                counts[key][w, e] = np.sum(passed & mask)
            background_counts[w, e], _ = np.histogram(mjj[passed & ~signal], bins=spectra.edges)
    inclusive, _ = np.histogram(mjj[~signal], bins=spectra.edges)
    background_only = scan_spectra(
        spectra.replace_counts(inclusive.astype(float), background_counts), config
    )
    return CellTruth(
        signal_in_sr=signal_in_sr,
        **counts,
        background_only_fit_sr=background_only.background_sr,
    )
