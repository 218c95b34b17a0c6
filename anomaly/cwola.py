"""CWoLa hunting (arXiv:1805.02664): classify signal-region events against sideband events."""

from __future__ import annotations

from typing import Any

import numpy as np

from anomaly.base import ReferenceDetector, WindowEvents, sideband_events
from anomaly.results import ReferenceSample

__all__ = ["CWoLa"]


class CWoLa(ReferenceDetector):
    """Classification without labels: SR data (class 1) vs adjacent sideband data (class 0).

    The sidebands are the window's events outside the SR; `sideband_width` (TeV) keeps only
    those within that distance of the SR's mass range. Classes are balanced by weights in the
    classifier back-ends.
    """

    def __init__(
        self,
        *,
        sideband_width: float | None = None,
        classifier: str | Any = "hgb",
        classifier_params: dict[str, Any] | None = None,
        n_folds: int = 5,
        random_state: int | None = None,
    ) -> None:
        super().__init__(
            classifier=classifier,
            classifier_params=classifier_params,
            n_folds=n_folds,
            random_state=random_state,
        )
        self.sideband_width = sideband_width

    def _reference(self, window: WindowEvents, seed: np.random.SeedSequence) -> ReferenceSample:
        return ReferenceSample(window.X[self._sidebands(window)])

    def _reference_rows(self, window: WindowEvents) -> np.ndarray:
        return np.flatnonzero(self._sidebands(window))

    def _sidebands(self, window: WindowEvents) -> np.ndarray:
        """Mask of the sideband rows the classifier learns from."""
        sb = sideband_events(window)
        if self.sideband_width is not None:
            if not self.sideband_width > 0:
                raise ValueError(f"sideband_width must be positive, got {self.sideband_width}")
            lo, hi = window.mjj_sr.min(), window.mjj_sr.max()
            near = (window.mjj >= lo - self.sideband_width) & (
                window.mjj <= hi + self.sideband_width
            )
            if not (sb & near).any():
                raise ValueError(
                    f"no sideband event within {self.sideband_width} TeV of the signal region "
                    f"[{lo:.4g}, {hi:.4g}] TeV ({int(sb.sum())} sideband events further out)"
                )
            sb &= near
        return sb
