"""What a fitted detector hands the next stage: one record of its window's scores.

`DetectorResult` holds a score for every event given to `fit` (signal-region events
out-of-fold), which of those scores are honest (from a model that never trained on the event),
and, for a detector that compares the data with a background sample of its own in the signal
region (a sampled template, a simulated background), that `Reference`: its events, their masses
and their out-of-fold scores, which calibrate the background efficiency of a cut; and, when
the detector measured it, a `ControlSample` where no signal is expected (held-out sideband data
and the reference's model at the same masses), which measures how far that calibration is off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ControlSample", "DetectorResult", "Reference", "ReferenceSample"]


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
class ControlSample:
    """Held-out data where no signal is expected and the reference's model at the same masses.

    Both are scored by the detector (the average of its fold models, none of which trained on
    either): the ratio of their pass fractions at a cut is the reference's
    mismodelling of that cut's efficiency (CATHODE: held-out sideband data against the flow's
    samples at their masses).
    """

    data_scores: np.ndarray
    model_scores: np.ndarray

    def __post_init__(self) -> None:
        if not len(self.data_scores) or not len(self.model_scores):
            raise ValueError("a control sample needs data and model events")

    def pass_ratio(self, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per threshold: data/model ratio of the fractions scoring above it, and its error.

        Pass counts are floored at one event (an empty count is not a certainty), so ratio and
        binomial error are finite at any cut.
        """
        thresholds = np.asarray(thresholds, dtype=float)
        flat = thresholds.ravel()
        n_d, n_m = len(self.data_scores), len(self.model_scores)
        data = np.sort(np.asarray(self.data_scores, dtype=float))
        model = np.sort(np.asarray(self.model_scores, dtype=float))
        k_d = np.maximum(n_d - np.searchsorted(data, flat, side="right"), 1)
        k_m = np.maximum(n_m - np.searchsorted(model, flat, side="right"), 1)
        ratio = (k_d / n_d) / (k_m / n_m)
        # relative binomial errors of both fractions, added in quadrature
        rel = np.sqrt((1 - k_d / n_d) / k_d + (1 - k_m / n_m) / k_m)
        return ratio.reshape(thresholds.shape), (ratio * rel).reshape(thresholds.shape)


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
    #: where no signal is expected, held-out data and the reference's model (None: not measured)
    control: ControlSample | None = None

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
    #: what the fit learnt besides scores, plain numbers by name (R-ANODE: the signal fraction
    #: of each fold model, 'signal_fractions')
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def n_seen(self) -> int:
        """Rows whose score came from models that all trained on them (biased scores)."""
        return int(np.count_nonzero(~self.honest))
