"""Units of work of `run` and `compare`: one detector fitted on one window's events.

Both commands name their methods with `method_labels`, seed every unit with `unit_seeds` (a
child of `numpy.random.SeedSequence.spawn` per unit, in a fixed order, so results do not depend
on scheduling), cut each window's events with `window_events` and fit with `fit_unit`, which
hands back the detector's `anomaly.results.DetectorResult`. `sideband_groups` finds the density
methods that can share one sideband fit (`fit_sideband_unit`, handed to them in
`DetectorUnit.sideband`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from analysis.config import MethodConfig
from analysis.executor import limited_threads
from analysis.regions import Window
from anomaly import DETECTORS, make_detector
from anomaly.base import AnomalyDetector
from anomaly.events import WindowEvents
from anomaly.results import DetectorResult

if TYPE_CHECKING:
    from anomaly.sideband import SidebandFit

__all__ = [
    "DetectorUnit",
    "Executor",
    "FittedUnit",
    "fit_sideband_unit",
    "fit_unit",
    "make_unit_detector",
    "method_labels",
    "sideband_groups",
    "unit_seeds",
    "window_events",
]


class Executor(Protocol):
    """Runs tasks, anywhere: `map(fn, tasks)` returns the results in task order."""

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
        """Apply `fn` to every task."""
        ...


def method_labels(methods: Sequence[MethodConfig]) -> list[str]:
    """A label per configured method: its name, with its index when the name repeats."""
    names = [m.name for m in methods]
    return [n if names.count(n) == 1 else f"{n}-{i}" for i, n in enumerate(names)]


def unit_seeds(seed: np.random.SeedSequence, n: int) -> list[int]:
    """`n` integer seeds, one per unit, from the children of `seed.spawn(n)`."""
    return [int(child.generate_state(1)[0] >> 1) for child in seed.spawn(n)]


@dataclass(frozen=True)
class DetectorUnit:
    """One detector on one window: its events (a window's SR and sidebands) and seed."""

    method: str
    options: dict[str, Any]
    window: Window
    #: the window's rows (and, for the idealized detector, the extra SR background)
    events: WindowEvents
    seed: int
    threads: int = 1
    #: a sideband fit of these events to use instead of fitting one (density detectors only)
    sideband: SidebandFit | None = None


def window_events(
    window: Window,
    events: pd.DataFrame,
    features: Sequence[str],
    extra_background: pd.DataFrame | None = None,
) -> WindowEvents:
    """A window's rows of `events` and the extra background in its SR, as a detector takes them.

    Not validated here: the detector's `fit` checks them and names what is wrong.
    """
    features = list(features)
    mjj_all = events["mjj"].to_numpy()
    rows = window.mask(mjj_all)
    mjj = mjj_all[rows]
    background = background_mjj = None
    if extra_background is not None:
        in_sr = window.sr_mask(extra_background["mjj"])
        background = extra_background.loc[in_sr, features].to_numpy()
        background_mjj = extra_background.loc[in_sr, "mjj"].to_numpy()
    return WindowEvents(
        X=events.loc[rows, features].to_numpy(),
        mjj=mjj,
        in_sr=window.sr_mask(mjj),
        background=background,
        labels=events.loc[rows, "label"].to_numpy() if "label" in events else None,
        background_mjj=background_mjj,
    )


@dataclass(frozen=True, eq=False)
class FittedUnit:
    """A fitted unit: the detector (to score new events), its result and the fit's seconds."""

    detector: AnomalyDetector
    result: DetectorResult
    seconds: float


def sideband_groups(methods: Sequence[MethodConfig]) -> list[list[int]]:
    """Indices of the methods, grouped: density detectors with equal density settings together.

    Every other method is a group of its own. Groups are in the order of their first member.
    """
    from anomaly.sideband import SidebandDensity

    groups: dict[str, list[int]] = {}
    for i, method in enumerate(methods):
        detector = DETECTORS[method.name](**method.options)
        key = str(i)
        if isinstance(detector, SidebandDensity):
            density = [detector.density_model, detector.density_params]
            key = "density " + json.dumps(density, sort_keys=True, default=repr)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def make_unit_detector(unit: DetectorUnit) -> AnomalyDetector:
    """The unit's detector, configured and seeded (with the unit's sideband fit), not fitted."""
    extra = {} if unit.sideband is None else {"sideband_fit": unit.sideband}
    return make_detector(unit.method, **unit.options, **extra, random_state=unit.seed)


def fit_sideband_unit(unit: DetectorUnit) -> SidebandFit:
    """The sideband fit the unit's density detector would make (with `unit.threads` threads)."""
    with limited_threads(unit.threads):
        events = unit.events
        return make_unit_detector(unit).fit_sideband(events.X, events.mjj, events.in_sr)


def fit_unit(unit: DetectorUnit) -> FittedUnit:
    """Fit the unit's detector (with `unit.threads` threads) on its window's events."""
    start = time.perf_counter()
    with limited_threads(unit.threads):
        detector = make_unit_detector(unit)
        events = unit.events
        extras: dict[str, np.ndarray] = {}
        if detector.uses_background:
            if events.background is None:
                raise ValueError(f"{unit.method} needs an extra background sample (toy data only)")
            extras["background"] = events.background
            if events.background_mjj is not None:
                extras["background_mjj"] = events.background_mjj
        if detector.uses_labels:
            if events.labels is None:
                raise ValueError(f"{unit.method} needs truth labels; the data have none")
            extras["labels"] = events.labels
        try:
            result = detector.fit(events.X, events.mjj, events.in_sr, **extras).result_
        except ValueError as err:
            raise ValueError(f"{unit.method} on window {unit.window.name}: {err}") from err
    return FittedUnit(detector, result, time.perf_counter() - start)
