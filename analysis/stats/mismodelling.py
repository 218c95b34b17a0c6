"""A reference's cut-efficiency mismodelling, measured where no signal is expected, as a nuisance.

A reference-calibrated background (the inclusive sideband fit times the cut's efficiency on a
CATHODE template) is only as good as the template's efficiency. Where no signal is expected,
held-out sideband data and the template's model at the same masses pass each cut in the ratio
r (1 for a perfect template) with a binomial error sigma_r: an auxiliary measurement of the
template's mismodelling. The cell's background is the calibrated one times r, with one
constrained nuisance parameter (a `histosys`, Gaussian constraint) of relative width
sigma_r / r: a template off by a few per cent no longer makes an excess, while a signal far
above that error is still claimed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["VARIATION", "control_ratios", "control_variation"]

#: name of the nuisance parameter in the window models
VARIATION = "reference_mismodelling"


def control_ratios(
    thresholds: np.ndarray, controls: Sequence[Any | None]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per window and cut: the control sample's data/model pass ratio and its error.

    `thresholds` is (windows, efficiencies); `controls` per window an object with
    `pass_ratio(thresholds) -> (ratio, error)` (`anomaly.results.ControlSample`) or None. A
    window without one gets ratio 1 and error 0 (no nuisance); None when no window has one.
    """
    thresholds = np.asarray(thresholds, dtype=float)
    if len(controls) != thresholds.shape[0]:
        raise ValueError(f"need a control (or None) for each of the {thresholds.shape[0]} windows")
    if all(c is None for c in controls):
        return None
    ratio, error = np.ones(thresholds.shape), np.zeros(thresholds.shape)
    for w, control in enumerate(controls):
        if control is not None:
            ratio[w], error[w] = control.pass_ratio(thresholds[w])
    # An efficiency of 1 (threshold -inf) keeps every event: nothing to mismodel.
    everything = ~np.isfinite(thresholds)
    ratio[everything], error[everything] = 1.0, 0.0
    return ratio, error


def control_variation(
    nominal: np.ndarray, up: np.ndarray, down: np.ndarray, ratio: float, error: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The calibrated background scaled by the control ratio, with the mismodelling variation.

    `nominal` is (..., bins) and `up`/`down` (..., variations, bins); the variations come back
    scaled and, when `error` > 0, with one more: nominal * (1 + e) and nominal / (1 + e),
    e = error / ratio (symmetric to first order, never negative).
    """
    if not (np.isfinite(ratio) and ratio > 0 and np.isfinite(error) and error >= 0):
        raise ValueError(f"the control ratio must be positive and finite, got {ratio} +- {error}")
    nominal, up, down = ratio * nominal, ratio * up, ratio * down
    if error == 0:
        return nominal, up, down
    relative = error / ratio
    up = np.concatenate([up, (nominal * (1 + relative))[..., None, :]], axis=-2)
    down = np.concatenate([down, (nominal / (1 + relative))[..., None, :]], axis=-2)
    return nominal, up, down
