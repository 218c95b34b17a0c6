"""The idealized anomaly detector: signal-region data against a perfect background sample."""

from __future__ import annotations

import numpy as np

from anomaly.base import ReferenceDetector, WindowEvents
from anomaly.results import ReferenceSample

__all__ = ["Idealized"]


class Idealized(ReferenceDetector):
    """SR data (class 1) vs `background`, simulated background events in the SR (class 0).

    Only possible on simulation, it is the upper bound of every weakly supervised method
    (CATHODE with a perfect template). Pass `background=` (features of SR background events) to
    `fit`, and `background_mjj=` (their masses) for the reference to calibrate a selection.
    """

    uses_background = True
    calibrates_background = True

    def _reference(self, window: WindowEvents, seed: np.random.SeedSequence) -> ReferenceSample:
        if window.background is None:
            raise ValueError(
                "the idealized detector needs fit(..., background=X_bg): features of background "
                "events in the signal region"
            )
        return ReferenceSample(window.background, window.background_mjj)
