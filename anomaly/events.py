"""The validated events of one search window that every detector fits on.

`check_window` turns a window's arrays (features, mjj, signal-region mask, optional background
sample and labels) into a `WindowEvents` record or raises an error naming the problem;
`row_hashes` recognises events a detector was fitted on.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from generative.validation import check_array

__all__ = [
    "MIN_SIDEBAND_EVENTS",
    "WindowEvents",
    "check_window",
    "row_hashes",
    "sideband_events",
]

#: fewest sideband events a detector learns from: fewer constrain no density or classifier
MIN_SIDEBAND_EVENTS = 100


class WindowEvents(NamedTuple):
    """Validated events of one search window (SR and SB) plus the optional extras."""

    X: np.ndarray
    mjj: np.ndarray
    in_sr: np.ndarray
    background: np.ndarray | None
    labels: np.ndarray | None
    background_mjj: np.ndarray | None = None

    @property
    def X_sr(self) -> np.ndarray:
        """Features of the signal-region events, in input order."""
        return self.X[self.in_sr]

    @property
    def mjj_sr(self) -> np.ndarray:
        """mjj of the signal-region events, in input order."""
        return self.mjj[self.in_sr]


def check_window(
    X: Any,
    mjj: Any,
    in_sr: Any,
    background: Any = None,
    labels: Any = None,
    background_mjj: Any = None,
) -> WindowEvents:
    """Validate a window's arrays (shapes, finiteness, non-empty SR) or raise naming the problem."""
    X = check_array(X, "X")
    n = X.shape[0]
    mjj_arr = np.asarray(mjj, dtype=np.float64)
    if mjj_arr.shape != (n,):
        raise ValueError(f"mjj must have shape ({n},), one value per row of X, got {mjj_arr.shape}")
    check_array(mjj_arr, "mjj")
    in_sr_arr = np.asarray(in_sr)
    if in_sr_arr.shape != (n,):
        raise ValueError(
            f"in_sr must have shape ({n},), one flag per row of X, got {in_sr_arr.shape}"
        )
    if in_sr_arr.dtype != bool:
        raise TypeError(f"in_sr must be a boolean mask, got dtype {in_sr_arr.dtype}")
    if not in_sr_arr.any():
        raise ValueError(f"the signal region is empty: no event of {n} has in_sr set")
    bg = bg_mjj = None
    if background is not None:
        bg = check_array(background, "background", n_features=X.shape[1])
    if background_mjj is not None:
        if bg is None:
            raise ValueError("background_mjj needs background= (the features of those events)")
        bg_mjj = np.asarray(background_mjj, dtype=np.float64)
        if bg_mjj.shape != (len(bg),):
            raise ValueError(
                f"background_mjj must have shape ({len(bg)},), one per background event, got "
                f"{bg_mjj.shape}"
            )
        check_array(bg_mjj, "background_mjj")
    lab = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), one per row of X, got {lab.shape}")
        if not np.isin(lab, (0, 1)).all():
            raise ValueError("labels must be 0 (background) or 1 (signal)")
        lab = lab.astype(np.int64)
    return WindowEvents(X, mjj_arr, in_sr_arr, bg, lab, bg_mjj)


def sideband_events(window: WindowEvents, minimum: int = MIN_SIDEBAND_EVENTS) -> np.ndarray:
    """Mask of the window's sideband events, or an error if there are fewer than `minimum`."""
    sb = ~window.in_sr
    n_sb = int(sb.sum())
    if not n_sb:
        raise ValueError(
            f"the sidebands hold no events (all {len(sb)} events of the window are in the "
            "signal region); a sideband model needs sideband data"
        )
    if n_sb < minimum:
        raise ValueError(
            f"the sidebands hold {n_sb} events, too few to learn the background from (need at "
            f"least {minimum})"
        )
    return sb


def row_hashes(X: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every row's values, to recognise events seen in training.

    Values are hashed at float32 precision, so a copy of a training row cast to float32 (and
    back) is still recognised: an exact float64 hash would let such a copy through.
    """
    canonical = np.asarray(X, dtype=np.float32)
    return pd.util.hash_pandas_object(pd.DataFrame(canonical), index=False).to_numpy()
