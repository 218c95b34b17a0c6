"""95% CLs upper limits on the signal yield of every window at one selection efficiency.

Each window's model is the one the scan tests (sideband dijet fit, or the inclusive fit times
the reference efficiency, with its correlated uncertainties), and the limits come from pyhf's
asymptotic CLs calculator (qtilde) through `analysis.stats.inference.upper_limit`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from analysis.stats.inference import upper_limit
from analysis.stats.models import WindowModel, build_window_model
from analysis.stats.scan import ScanConfig, cell_background
from analysis.stats.selection import SelectedSpectra

__all__ = ["WindowLimit", "window_limits"]


@dataclass(frozen=True)
class WindowLimit:
    """CLs upper limit on the selected signal yield (events) in one window; NaN if untestable.

    `expected` holds the -2, -1, 0 (median), +1, +2 sigma expected limits under background only.
    """

    window: int
    sr_low: float
    sr_high: float
    efficiency: float
    observed: float
    expected: tuple[float, float, float, float, float]
    level: float
    valid: bool
    message: str

    def to_dict(self) -> dict:
        """JSON-compatible (non-finite numbers become None)."""

        def clean(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {
            "window": self.window,
            "signal_region": [self.sr_low, self.sr_high],
            "efficiency": self.efficiency,
            "observed": clean(self.observed),
            "expected": [clean(v) for v in self.expected],
            "cl": 1.0 - self.level,
            "valid": self.valid,
            "message": self.message,
        }


def _model(spectra: SelectedSpectra, w: int, e: int, config: ScanConfig) -> WindowModel:
    """The scan's window model of cell (w, e), or a ValueError saying why there is none."""
    return build_window_model(
        spectra.counts[w, e],
        spectra.edges,
        spectra.windows[w],
        cell_background(spectra, w, e, config),
        resolution=config.resolution,
    )


def window_limits(
    spectra: SelectedSpectra,
    efficiency: float,
    config: ScanConfig | None = None,
    usable: np.ndarray | None = None,
    level: float = 0.05,
) -> list[WindowLimit]:
    """CLs limits at CL 1 - `level` in every window at the selection `efficiency`.

    `usable` (one flag per window) marks windows whose background model passed the search's
    checks (e.g. a reference closure); the others get no limit, with the reason.
    """
    config = ScanConfig() if config is None else config
    matches = np.flatnonzero(np.isclose(spectra.efficiencies, efficiency))
    if matches.size == 0:
        raise ValueError(
            f"efficiency {efficiency} is not one of the scan's {spectra.efficiencies.tolist()}"
        )
    e = int(matches[0])
    n_windows = len(spectra.windows)
    usable = np.ones(n_windows, bool) if usable is None else np.asarray(usable, bool)
    out = []
    for w in range(n_windows):
        low, high = spectra.windows[w].sr_low, spectra.windows[w].sr_high
        nan = float("nan")
        try:
            if not usable[w]:
                raise ValueError("the window's background model failed the search's checks")
            # One BLAS thread: pyhf's root finder (rtol 1e-3) lands 1e-8 apart with another
            # summation order, and a resumed search must reproduce a fresh one exactly.
            with threadpool_limits(1):
                result = upper_limit(_model(spectra, w, e, config), level=level)
        except ValueError as err:
            out.append(
                WindowLimit(w, low, high, efficiency, nan, (nan,) * 5, level, False, str(err))
            )
            continue
        out.append(
            WindowLimit(
                w, low, high, efficiency, result.observed, result.expected, level, True, "ok"
            )
        )
    return out
