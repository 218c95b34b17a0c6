"""What a fitted detector hands the next stage: one record of its window's scores.

`DetectorResult` holds a score for every event given to `fit` (signal-region events
out-of-fold), which of those scores are honest (from a model that never trained on the event),
and, for a detector that compares the data with a background sample of its own in the signal
region (a sampled template, a simulated background), that `Reference`: its events, their masses
and their out-of-fold scores, which calibrate the background efficiency of a cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["DetectorResult", "Reference", "ReferenceSample"]


@dataclass(frozen=True, eq=False)
class ReferenceSample:
    """Background-like events a reference detector compares the signal-region data with."""

    X: np.ndarray
    #: masses of the events (TeV) when known: a sampled template's, a simulated background's
    mjj: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.mjj is not None and np.shape(self.mjj) != (len(self.X),):
            raise ValueError(
                f"reference mjj must have shape ({len(self.X)},), got {np.shape(self.mjj)}"
            )


@dataclass(frozen=True, eq=False)
class Reference:
    """A detector's own background sample in the signal region, scored out-of-fold."""

    X: np.ndarray
    #: masses (TeV), None when the detector was not told them
    mjj: np.ndarray | None
    #: score of every reference event by the fold model that did not train on it
    scores: np.ndarray
    #: template-quality tests by name (CATHODE: 'sideband', 'interpolation'), plain numbers
    #: (auc, error, n_a, n_b, z) of `anomaly.template_quality.TwoSampleTest.to_dict`
    quality: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def calibrates(self) -> bool:
        """Whether it can measure a cut's background efficiency per mjj bin (masses known)."""
        return self.mjj is not None


@dataclass(frozen=True, eq=False)
class DetectorResult:
    """One detector fitted on one window: per-event scores, their honesty, its reference."""

    #: a score for every row given to `fit` (higher = more anomalous), in input order
    scores: np.ndarray
    #: False for rows every fold model trained on (e.g. sidebands of a sideband density)
    honest: np.ndarray
    #: the external background reference (None: the detector has none, or it is window rows)
    reference: Reference | None = None

    @property
    def n_seen(self) -> int:
        """Rows whose score came from models that all trained on them (biased scores)."""
        return int(np.count_nonzero(~self.honest))
