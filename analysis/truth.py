"""What each cell of a search on labelled data selects, and what its fit makes of the background.

On data with truth labels (injected signal, simulation) every (window, efficiency) cell counts
the signal and the background its selection passes in the signal region and in the sidebands.
It also refits the cell's background model on the selected background alone. That fit's
signal-region prediction, against the true selected background, measures what the selection
and the fit do to a spectrum without signal (sculpting), apart from the signal that leaks into
the sidebands and that the real fit reads as background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.stats import ScanConfig, SelectedSpectra, scan_spectra
from analysis.store import JSON

__all__ = ["CellTruth", "cell_truth"]


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

    def to_dict(self) -> JSON:
        """JSON-compatible record (the `truth` entry of results.json)."""
        fit = self.background_only_fit_sr
        return {
            "signal_in_sr": self.signal_in_sr.tolist(),
            "signal_selected_in_sr": self.signal_selected_in_sr.tolist(),
            "background_selected_in_sr": self.background_selected_in_sr.tolist(),
            "signal_selected_in_sidebands": self.signal_selected_in_sidebands.tolist(),
            "background_selected_in_sidebands": self.background_selected_in_sidebands.tolist(),
            "background_only_fit_sr": [
                [None if np.isnan(v) else float(v) for v in row] for row in fit
            ],
        }


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
    counts = {
        key: np.zeros((n_windows, n_effs), int) for key in ("sig_sr", "bkg_sr", "sig_sb", "bkg_sb")
    }
    background_counts = np.zeros_like(spectra.counts)
    for w, window in enumerate(spectra.windows):
        sr, sb = window.sr_mask(mjj), window.sb_mask(mjj)
        for e, threshold in enumerate(spectra.thresholds[w]):
            passed = scores[w] > threshold
            counts["sig_sr"][w, e] = np.sum(passed & sr & signal)
            counts["bkg_sr"][w, e] = np.sum(passed & sr & ~signal)
            counts["sig_sb"][w, e] = np.sum(passed & sb & signal)
            counts["bkg_sb"][w, e] = np.sum(passed & sb & ~signal)
            background_counts[w, e], _ = np.histogram(mjj[passed & ~signal], bins=spectra.edges)
    inclusive, _ = np.histogram(mjj[~signal], bins=spectra.edges)
    background_only = scan_spectra(
        spectra.replace_counts(inclusive.astype(float), background_counts), config
    )
    return CellTruth(
        signal_in_sr=np.array([np.sum(w.sr_mask(mjj) & signal) for w in spectra.windows]),
        signal_selected_in_sr=counts["sig_sr"],
        background_selected_in_sr=counts["bkg_sr"],
        signal_selected_in_sidebands=counts["sig_sb"],
        background_selected_in_sidebands=counts["bkg_sb"],
        background_only_fit_sr=background_only.background_sr,
    )
