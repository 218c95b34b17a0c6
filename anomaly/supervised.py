"""The fully supervised reference: a classifier of signal against background on true labels."""

from __future__ import annotations

import numpy as np

from anomaly.base import ClassifierDetector, WindowEvents

__all__ = ["Supervised"]


class Supervised(ClassifierDetector):
    """Signal (label 1) vs background (label 0) among the SR events, folds stratified by label.

    The absolute upper bound of any anomaly detector; pass `labels=` (one per event) to `fit`.
    """

    uses_labels = True

    def _stratify(self, window: WindowEvents) -> np.ndarray:
        if window.labels is None:
            raise ValueError("the supervised detector needs fit(..., labels=y) with 0/1 labels")
        return window.labels[window.in_sr]

    def _training_set(
        self, window: WindowEvents, train: np.ndarray, fold: int
    ) -> tuple[np.ndarray, np.ndarray]:
        return window.X_sr[train], window.labels[window.in_sr][train]
