"""The records a search hands from stage to stage, which the report and the command line read.

data -> `SearchData` -> (detectors, `anomaly.results.DetectorResult`, gathered per method as
`MethodScores`) -> selections (`analysis.stats.SelectedSpectra`) -> scan
(`analysis.stats.ScanResult`, with its per-cell predictions and closure) -> look-elsewhere,
limits, bias tests -> `MethodOutcome` -> `SearchResult`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.regions import Window
from analysis.stats import ReferenceScores, ScanResult, SelectedSpectra
from analysis.store import JSON
from analysis.truth import CellTruth

__all__ = [
    "BestCell",
    "DataDescription",
    "GlobalSignificance",
    "MethodOutcome",
    "MethodScores",
    "SearchData",
    "SearchResult",
]


@dataclass(frozen=True)
class DataDescription:
    """What the events of a search are: source, size, injected signal, features, mass range."""

    source: str
    n_events: int
    #: signal events among them (from truth labels), None without labels
    n_signal: int | None
    features: tuple[str, ...]
    mjj_range: tuple[float, float]

    def to_dict(self) -> JSON:
        """JSON-compatible record."""
        out = asdict(self)
        out["features"], out["mjj_range"] = list(self.features), list(self.mjj_range)
        return out


@dataclass(frozen=True)
class SearchData:
    """Events of a search (features in TeV) and the extra background of the idealized detector."""

    events: pd.DataFrame
    extra_background: pd.DataFrame | None
    description: DataDescription


@dataclass(frozen=True)
class MethodScores:
    """One method's detector results gathered over the windows."""

    #: (n_windows, n_events); events outside a window's range never pass its cuts
    matrix: np.ndarray
    seconds: float
    #: per window index, a subsample of the reference's events (for the report's plot)
    templates: dict[int, np.ndarray]
    #: events per window whose score came from models that all trained on them (biased)
    n_seen: list[int]
    #: per window the method's own background reference, or None
    references: list[ReferenceScores] | None
    #: per window, the reference's template-quality tests by name (see anomaly.template_quality)
    template_tests: list[dict[str, dict[str, float]]]


@dataclass(frozen=True)
class GlobalSignificance:
    """The look-elsewhere outcome of a method's largest excess."""

    significance: float | None
    p_value: float | None
    #: the significance is a lower limit (no pseudo-experiment reached the excess)
    is_limit: bool
    error: float | None
    method: str | None

    @classmethod
    def from_lee(cls, lee: JSON) -> GlobalSignificance:
        """From a stored `analysis.stats.LookElsewhereResult.to_dict`."""
        return cls(
            lee["global_significance"],
            lee["global_p_value"],
            lee["is_limit"],
            lee.get("global_significance_error"),
            lee.get("method"),
        )


@dataclass(frozen=True)
class BestCell:
    """The most significant valid cell of a method's scan."""

    window: Window
    window_index: int
    efficiency_index: int
    efficiency: float
    local_significance: float
    local_p_value: float
    signal_yield: float
    #: the background model's prediction in the signal region
    background_sr: float
    #: None when no look-elsewhere study ran
    global_significance: GlobalSignificance | None

    def to_dict(self) -> JSON:
        """JSON-compatible record (the `best` entry of results.json)."""
        out: JSON = {
            "window": self.window.name,
            "window_index": self.window_index,
            "sr": [self.window.sr_low, self.window.sr_high],
            "efficiency_index": self.efficiency_index,
            "efficiency": self.efficiency,
            "local_significance": self.local_significance,
            "local_p_value": self.local_p_value,
            "signal_yield": self.signal_yield,
            "background_sr": self.background_sr,
        }
        g = self.global_significance
        if g is not None:
            out["global_significance"] = g.significance
            out["global_p_value"] = g.p_value
            out["global_is_limit"] = g.is_limit
            out["global_significance_error"] = g.error
            out["global_method"] = g.method
        return out


@dataclass(frozen=True)
class MethodOutcome:
    """Everything one method of a search produced."""

    label: str
    scores: np.ndarray
    spectra: SelectedSpectra
    scan: ScanResult
    #: `analysis.stats.LookElsewhereResult.to_dict`, None when not run
    lee: JSON | None
    seconds: float
    templates: dict[int, np.ndarray]
    #: events per window whose score came from models that all trained on them (biased)
    n_seen: list[int]
    #: per window, the reference's template-quality tests by name (see anomaly.template_quality)
    template_tests: list[dict[str, dict[str, float]]]
    #: per window, CLs upper limits at the method's limit efficiency (`WindowLimit.to_dict`)
    limits: list[JSON] | None = None
    #: per window, bias tests and F-test choice (`BiasResult.to_dict`) when stats.bias_test
    bias: list[JSON] | None = None
    #: what each cell selects by truth label; None when the data have no labels
    truth: CellTruth | None = None

    @property
    def best(self) -> BestCell | None:
        """The most significant valid cell, None when no cell has a valid background model."""
        scan = self.scan
        if not np.isfinite(scan.max_significance):
            return None
        w, e = scan.best
        return BestCell(
            window=scan.windows[w],
            window_index=w,
            efficiency_index=e,
            efficiency=float(scan.efficiencies[e]),
            local_significance=float(scan.significances[w, e]),
            local_p_value=float(scan.p_values[w, e]),
            signal_yield=float(scan.signal_yields[w, e]),
            background_sr=float(scan.background_sr[w, e]),
            global_significance=None if self.lee is None else GlobalSignificance.from_lee(self.lee),
        )

    def closure(self) -> list[JSON] | None:
        """Per window the scan's reference closure (None: the background is not the reference's)."""
        if self.scan.closure is None:
            return None
        return [closure.to_dict() for closure in self.scan.closure]

    def window_template_tests(self) -> list[JSON] | None:
        """Per window the reference's quality tests by name, None when no window has any."""
        if not any(self.template_tests):
            return None
        return [
            {"window": window.name, "tests": tests}
            for window, tests in zip(self.scan.windows, self.template_tests, strict=True)
        ]


@dataclass(frozen=True)
class SearchResult:
    """A finished search: where its files are, its outcomes and the numbers of `results.json`."""

    output: Path
    results: JSON
    outcomes: list[MethodOutcome]
    windows: list[Window]
    data: SearchData
