"""Signal regions, sidebands and sliding windows in ``mjj`` (TeV).

A ``Window`` is a signal region [sr_low, sr_high) with sidebands either adjacent of a given
width, [sr_low - w, sr_low) and [sr_high, sr_high + w), or everything outside the signal region
(``sideband_width=None``). Intervals are closed below and open above, so adjacent windows never
share an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd


class WindowCounts(NamedTuple):
    """Events in the signal region and in the lower and upper sidebands of a window."""

    n_sr: int
    n_sb_low: int
    n_sb_high: int

    @property
    def n_sb(self) -> int:
        """Events in both sidebands."""
        return self.n_sb_low + self.n_sb_high


class RegionData(NamedTuple):
    """Rows of a table in the signal region and in the sidebands of a window."""

    sr: pd.DataFrame
    sb: pd.DataFrame


class WindowBins(NamedTuple):
    """A window's bins on a binning, by bin centre: its signal region and its fit sidebands."""

    #: bins whose centre lies in the signal region [sr_low, sr_high)
    sr: np.ndarray
    #: bins outside the signal region whose centre lies in [sb_low, sb_high): the sideband fit
    fit: np.ndarray

    @property
    def fit_range(self) -> np.ndarray:
        """Bins of the window's fit range: its signal region and its fit sidebands."""
        return self.sr | self.fit


class InsufficientEventsError(ValueError):
    """A window's signal region or sidebands hold too few events for a method."""


@dataclass(frozen=True)
class Window:
    """Signal region [sr_low, sr_high) in TeV with sidebands: adjacent of a width, or all else."""

    sr_low: float
    sr_high: float
    sideband_width: float | None = None

    def __post_init__(self) -> None:
        values = (self.sr_low, self.sr_high)
        if not all(np.isfinite(values)) or not 0 <= self.sr_low < self.sr_high:
            raise ValueError(
                f"a window needs finite 0 <= sr_low < sr_high (TeV), got {self.sr_low}, "
                f"{self.sr_high}"
            )
        if self.sideband_width is not None and not (
            np.isfinite(self.sideband_width) and self.sideband_width > 0
        ):
            raise ValueError(f"sideband_width must be positive or None, got {self.sideband_width}")

    @property
    def name(self) -> str:
        """Readable label, e.g. ``SR 3.3-3.7 TeV`` or ``SR 3.3-3.7 TeV, SB 0.2 TeV``."""
        label = f"SR {self.sr_low:.4g}-{self.sr_high:.4g} TeV"
        if self.sideband_width is not None:
            label += f", SB {self.sideband_width:.4g} TeV"
        return label

    @property
    def centre(self) -> float:
        """Centre of the signal region (TeV), where the scan's signal shape peaks."""
        return 0.5 * (self.sr_low + self.sr_high)

    @property
    def sb_low_edges(self) -> tuple[float, float]:
        """Lower sideband [low, high) in TeV (from 0 when the sidebands are everything else)."""
        width = np.inf if self.sideband_width is None else self.sideband_width
        return max(self.sr_low - width, 0.0), self.sr_low

    @property
    def sb_high_edges(self) -> tuple[float, float]:
        """Upper sideband [low, high) in TeV (to infinity when sidebands are everything else)."""
        width = np.inf if self.sideband_width is None else self.sideband_width
        return self.sr_high, self.sr_high + width

    @property
    def sb_low(self) -> float:
        """Lower edge of the window's lower sideband (TeV): where its background fit starts."""
        return self.sb_low_edges[0]

    @property
    def sb_high(self) -> float:
        """Upper edge of the window's upper sideband (TeV; inf when sidebands are all else)."""
        return self.sb_high_edges[1]

    def bins(self, edges: np.ndarray) -> WindowBins:
        """Signal-region and sideband-fit masks of the bins of `edges` (TeV), by bin centre."""
        edges = np.asarray(edges, dtype=np.float64)
        centres = 0.5 * (edges[1:] + edges[:-1])
        sr = _within(centres, self.sr_low, self.sr_high)
        return WindowBins(sr=sr, fit=~sr & _within(centres, self.sb_low, self.sb_high))

    def sr_mask(self, mjj: np.ndarray | pd.Series) -> np.ndarray:
        """True for events in the signal region."""
        return _within(_as_mjj(mjj), self.sr_low, self.sr_high)

    def sb_low_mask(self, mjj: np.ndarray | pd.Series) -> np.ndarray:
        """True for events in the lower sideband."""
        return _within(_as_mjj(mjj), *self.sb_low_edges)

    def sb_high_mask(self, mjj: np.ndarray | pd.Series) -> np.ndarray:
        """True for events in the upper sideband."""
        return _within(_as_mjj(mjj), *self.sb_high_edges)

    def sb_mask(self, mjj: np.ndarray | pd.Series) -> np.ndarray:
        """True for events in either sideband."""
        mjj = _as_mjj(mjj)
        return self.sb_low_mask(mjj) | self.sb_high_mask(mjj)

    def mask(self, mjj: np.ndarray | pd.Series) -> np.ndarray:
        """True for the window's events: in the signal region or in a sideband."""
        mjj = _as_mjj(mjj)
        return self.sr_mask(mjj) | self.sb_mask(mjj)

    def counts(self, mjj: np.ndarray | pd.Series) -> WindowCounts:
        """Number of events in the signal region and in each sideband."""
        mjj = _as_mjj(mjj)
        return WindowCounts(
            n_sr=int(np.count_nonzero(self.sr_mask(mjj))),
            n_sb_low=int(np.count_nonzero(self.sb_low_mask(mjj))),
            n_sb_high=int(np.count_nonzero(self.sb_high_mask(mjj))),
        )

    def check(
        self, mjj: np.ndarray | pd.Series, *, min_sr: int = 1, min_sb: int = 1
    ) -> WindowCounts:
        """Counts of the window; InsufficientEventsError if the SR or the sidebands are short."""
        counts = self.counts(mjj)
        short = []
        if counts.n_sr < min_sr:
            short.append(f"signal region has {counts.n_sr} (need {min_sr})")
        if counts.n_sb < min_sb:
            short.append(
                f"sidebands have {counts.n_sb} = {counts.n_sb_low} low + {counts.n_sb_high} high "
                f"(need {min_sb})"
            )
        if short:
            raise InsufficientEventsError(f"window {self.name}: " + "; ".join(short) + " events")
        return counts

    def split(self, table: pd.DataFrame, *, column: str = "mjj") -> RegionData:
        """The table's signal-region rows and sideband rows (by the ``column`` mjj in TeV)."""
        if column not in table.columns:
            raise KeyError(f"table has no '{column}' column; it has {list(table.columns)}")
        mjj = _as_mjj(table[column])
        return RegionData(sr=table[self.sr_mask(mjj)], sb=table[self.sb_mask(mjj)])


def as_window(window: Window | tuple[float, float]) -> Window:
    """A `Window`; a (sr_low, sr_high) pair becomes one whose sidebands are everything else."""
    if isinstance(window, Window):
        return window
    try:
        low, high = window
    except (TypeError, ValueError):
        raise TypeError(f"a window must be a Window or (sr_low, sr_high), got {window!r}") from None
    return Window(float(low), float(high))


def sliding_windows(
    low: float,
    high: float,
    width: float,
    step: float | None = None,
    *,
    spacing: Literal["linear", "log"] = "linear",
    sideband_width: float | None = None,
) -> list[Window]:
    """Signal-region windows covering [low, high] TeV; ``step < width`` makes them overlap.

    ``linear``: windows [a, a + width) with a = low, low + step, ...
    ``log``: ``width`` and ``step`` are fractions of the lower edge, windows [a, a (1 + width))
    with a = low, low (1 + step), ... (a constant relative width, like the mass resolution).
    ``step`` defaults to ``width`` (adjacent windows). Windows end at or before ``high``.
    """
    if spacing not in ("linear", "log"):
        raise ValueError(f"spacing must be 'linear' or 'log', got {spacing!r}")
    step = width if step is None else step
    if not (width > 0 and step > 0):
        raise ValueError(f"width and step must be positive, got width={width}, step={step}")
    if not 0 <= low < high:
        raise ValueError(f"need 0 <= low < high (TeV), got low={low}, high={high}")
    if spacing == "log" and low == 0:
        raise ValueError("log spacing needs low > 0")
    # Tolerance so that edges landing on ``high`` up to rounding are kept.
    tolerance = 1e-9 * high
    windows = []
    k = 0
    while True:
        if spacing == "linear":
            start, stop = low + k * step, low + k * step + width
        else:
            start = low * (1 + step) ** k
            stop = start * (1 + width)
        if stop > high + tolerance:
            break
        windows.append(Window(start, min(stop, high), sideband_width))
        k += 1
    if not windows:
        raise ValueError(f"no window of width {width} ({spacing}) fits in [{low}, {high}] TeV")
    return windows


def _as_mjj(mjj: np.ndarray | pd.Series) -> np.ndarray:
    values = np.asarray(mjj, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"mjj must be one-dimensional, got shape {values.shape}")
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ValueError(f"mjj has NaN or inf in {bad} of {len(values)} events")
    return values


def _within(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return (values >= low) & (values < high)
