"""Sensitivity of a whole search: the smallest injected signal it reports at a global 3 and 5 sigma.

The search of one config runs end to end (detectors, fits, look-elsewhere) at each injected
signal count and seed, each in its own results folder (`<output>/inj<n>/seed<s>/`, resumable
as any search). Each run gives per method the global significance of its best cell
(`SensitivityPoint`). A seed reaches a threshold when its global significance is at least the
threshold; a global significance that is a lower limit (no pseudo-experiment reached the
excess) reaches it only when the limit does; below it, the seed misses when its local
significance (an upper bound of the global one) is below the threshold, and is undecided
otherwise. An injection reaches the threshold when more than half of its seeds do, misses it
when more than half miss it, and is undecided otherwise. The runs without injected signal give
the global p-values of a background-only search, which must not claim a discovery. On labelled
data each best cell carries its truth (`analysis.truth`), and the study gives per method how far
its background fits of the selected background alone lie from the true one (`FitBias`).
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from analysis.config import SearchConfig
from analysis.executor import configured_executor
from analysis.results import BestCell, SearchResult
from analysis.store import JSON, write_atomic, write_json
from analysis.truth import CELL_COUNTS, CellTruth, background_fit_bias
from analysis.units import Executor

__all__ = [
    "FitBias",
    "Reach",
    "SensitivityPoint",
    "SensitivityResult",
    "first_reach",
    "point_config",
    "points_of",
    "run_sensitivity",
    "seed_reaches",
    "summarise",
]

#: global significances whose first injection is reported
THRESHOLDS = (3.0, 5.0)


@dataclass(frozen=True)
class SensitivityPoint:
    """One method's best cell in the search of one injected signal count and seed."""

    method: str
    injection: int
    seed: int
    #: None when no cell of the search had a valid background model
    window: str | None
    efficiency: float | None
    local_significance: float | None
    #: None when no look-elsewhere study ran or no cell was valid
    global_significance: float | None
    global_p_value: float | None
    #: the global significance is a lower limit (no pseudo-experiment reached the excess)
    global_is_limit: bool
    #: truth: signal events in the best window's signal region, None without labels
    signal_in_sr: int | None
    #: the best cell's fitted background in its signal region (None: no valid cell, or a record
    #: written before it was kept)
    fitted_background_sr: float | None = None
    #: truth of the best cell's selection: signal and background passing in its signal region
    #: and in its sidebands (whose signal the sideband fit reads as background)
    signal_selected_in_sr: int | None = None
    background_selected_in_sr: int | None = None
    signal_selected_in_sidebands: int | None = None
    background_selected_in_sidebands: int | None = None
    #: the best cell's fit of its selected background alone, in its signal region (None: that
    #: fit was refused): against `background_selected_in_sr` it shows what the fit does to a
    #: background without signal
    background_only_fit_sr: float | None = None

    def to_dict(self) -> JSON:
        """JSON-compatible record."""
        return asdict(self)


@dataclass(frozen=True)
class Reach:
    """The smallest injection at which a method reaches a global significance."""

    threshold: float
    #: smallest injection whose seeds reach it by majority; None when none does
    injection: int | None
    #: injections below it, or all when none reaches, whose seeds did not decide (lower limits)
    undecided_below: tuple[int, ...]

    def to_dict(self) -> JSON:
        """JSON-compatible record."""
        return {**asdict(self), "undecided_below": list(self.undecided_below)}


@dataclass(frozen=True)
class SensitivityResult:
    """A finished study: every point and, per method, where it reaches each threshold."""

    output: Path
    points: list[SensitivityPoint]
    reach: dict[str, list[Reach]]
    #: per method, the global p-values of the runs without injected signal (one per seed)
    null_p_values: dict[str, list[float | None]]
    #: per method with labelled searches, what its selections and fits do to the background
    fit_bias: dict[str, FitBias] = field(default_factory=dict)


@dataclass(frozen=True)
class FitBias:
    """A method's background-alone fit over its true selected background, per efficiency."""

    efficiencies: tuple[float, ...]
    #: `analysis.truth.background_fit_bias` over every cell of its labelled searches
    median: np.ndarray
    n_searches: int

    def to_dict(self) -> JSON:
        """JSON-compatible record."""
        return {
            "efficiencies": list(self.efficiencies),
            "median": [None if np.isnan(v) else float(v) for v in self.median],
            "n_searches": self.n_searches,
        }


def point_config(config: SearchConfig, injection: int, seed: int) -> SearchConfig:
    """The search of `config` with `injection` signal events and master seed `seed`, own folder."""
    data = config.data.model_copy(
        update={"injection": config.data.injection.model_copy(update={"n_signal": injection})}
    )
    output = Path(config.output) / f"inj{injection}" / f"seed{seed}"
    return config.model_copy(update={"data": data, "seed": seed, "output": output})


def _best_truth(truth: CellTruth | None, best: BestCell | None) -> dict[str, float | None]:
    """The truth of the best cell (all None without labels or without a valid cell)."""
    if truth is None or best is None:
        return {"signal_in_sr": None, "background_only_fit_sr": None, **dict.fromkeys(CELL_COUNTS)}
    return truth.at(best.window_index, best.efficiency_index)


def points_of(result: SearchResult, injection: int, seed: int) -> list[SensitivityPoint]:
    """Each method's best cell of one finished search."""
    points = []
    for outcome in result.outcomes:
        best = outcome.best
        glob = None if best is None else best.global_significance
        points.append(
            SensitivityPoint(
                method=outcome.label,
                injection=injection,
                seed=seed,
                window=None if best is None else best.window.name,
                efficiency=None if best is None else best.efficiency,
                local_significance=None if best is None else best.local_significance,
                global_significance=None if glob is None else glob.significance,
                global_p_value=None if glob is None else glob.p_value,
                global_is_limit=False if glob is None else bool(glob.is_limit),
                fitted_background_sr=None if best is None else best.background_sr,
                **_best_truth(outcome.truth, best),
            )
        )
    return points


def seed_reaches(point: SensitivityPoint, threshold: float) -> bool | None:
    """Whether one search reached `threshold` globally; None when its lower limit cannot tell."""
    z = point.global_significance
    if point.local_significance is not None and point.local_significance < threshold:
        return False  # the global significance never exceeds the local one
    if z is None or not np.isfinite(z):
        # no valid cell: nothing was found; no look-elsewhere study: nothing can be said
        return False if point.window is None else None
    if z >= threshold:
        return True
    return None if point.global_is_limit else False


def first_reach(points: Sequence[SensitivityPoint], threshold: float) -> Reach:
    """The smallest injection at which most seeds of one method reach `threshold` globally."""
    methods = {p.method for p in points}
    if len(methods) > 1:
        raise ValueError(f"first_reach takes the points of one method, got {sorted(methods)}")
    undecided = []
    for injection in sorted({p.injection for p in points}):
        votes = [seed_reaches(p, threshold) for p in points if p.injection == injection]
        if 2 * votes.count(True) > len(votes):
            return Reach(threshold, injection, tuple(undecided))
        if 2 * votes.count(False) <= len(votes):
            undecided.append(injection)
    return Reach(threshold, None, tuple(undecided))


def summarise(
    points: Sequence[SensitivityPoint],
    output: Path,
    truths: Mapping[str, Sequence[CellTruth]] | None = None,
    efficiencies: Sequence[float] = (),
) -> SensitivityResult:
    """Per method: where it first reaches each threshold, null p-values, background fit bias.

    The fit bias comes from the cells' `truths` of each method's labelled searches.
    """
    methods = list(dict.fromkeys(p.method for p in points))
    reach = {
        m: [first_reach([p for p in points if p.method == m], t) for t in THRESHOLDS]
        for m in methods
    }
    null = {
        m: [p.global_p_value for p in points if p.method == m and p.injection == 0] for m in methods
    }
    bias = {
        m: FitBias(tuple(efficiencies), background_fit_bias(found), len(found))
        for m, found in (truths or {}).items()
        if found
    }
    return SensitivityResult(output, list(points), reach, null, bias)


def run_sensitivity(
    config: SearchConfig,
    injections: Sequence[int],
    seeds: Sequence[int],
    *,
    executor: Executor | None = None,
) -> SensitivityResult:
    """Run the search of `config` at every injection and seed; where each method reaches 3 and 5.

    Writes `sensitivity.json` (every point, the reach per method and threshold, the global
    p-values without signal, the cost of each search) and `sensitivity.md` into the output
    folder. A finished search is read back, so an interrupted study resumes.
    """
    from analysis.workflow import run_search

    if not injections or not seeds:
        raise ValueError("a sensitivity study needs at least one injection and one seed")
    bad = [n for n in injections if n < 0]
    if bad:
        raise ValueError(f"injected signal counts must be >= 0, got {bad}")
    if len(set(injections)) != len(injections) or len(set(seeds)) != len(seeds):
        raise ValueError(f"injections {list(injections)} and seeds {list(seeds)} must not repeat")
    points: list[SensitivityPoint] = []
    truths: dict[str, list[CellTruth]] = {}
    costs: list[JSON] = []
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(configured_executor(config.executor))
        for injection in sorted(injections):
            for seed in seeds:
                wall, cpu = time.perf_counter(), _cpu_seconds()
                result = run_search(point_config(config, injection, seed), executor=executor)
                points += points_of(result, injection, seed)
                for outcome in result.outcomes:
                    if outcome.truth is not None:
                        truths.setdefault(outcome.label, []).append(outcome.truth)
                costs.append(
                    {
                        "injection": injection,
                        "seed": seed,
                        "wall_seconds": time.perf_counter() - wall,
                        "cpu_seconds": _cpu_seconds() - cpu,
                    }
                )
    out = summarise(points, Path(config.output), truths, config.stats.efficiencies)
    write_json(
        out.output / "sensitivity.json",
        {
            "injections": sorted(injections),
            "seeds": list(seeds),
            "points": [p.to_dict() for p in points],
            "reach": {m: [r.to_dict() for r in rs] for m, rs in out.reach.items()},
            "null_global_p_values": out.null_p_values,
            "background_alone_fit_over_truth": {m: b.to_dict() for m, b in out.fit_bias.items()},
            "cost": costs,
        },
    )
    write_atomic(out.output / "sensitivity.md", markdown(out))
    return out


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished child processes (a process pool's workers)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _z_text(point: SensitivityPoint) -> str:
    z = point.global_significance
    if z is None:
        return "n/a"
    return f"{'>' if point.global_is_limit else ''}{z:.2f}"


def markdown(result: SensitivityResult) -> str:
    """The study as markdown: global Z per injection and seed, and where each threshold is met."""
    seeds = list(dict.fromkeys(p.seed for p in result.points))
    lines = [
        "Global significance of each method's best cell (> : a lower limit, no pseudo-experiment "
        "reached the excess), local significance in brackets.",
        "",
        "| method | injected | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "| --- | --- | " + " | ".join("---" for _ in seeds) + " |",
    ]
    for method in result.reach:
        mine = [p for p in result.points if p.method == method]
        for injection in sorted({p.injection for p in mine}):
            cells = []
            for seed in seeds:
                p = next((q for q in mine if q.injection == injection and q.seed == seed), None)
                if p is None:
                    cells.append("missing")
                    continue
                local = p.local_significance
                cells.append(_z_text(p) + ("" if local is None else f" ({local:.2f})"))
            lines.append(f"| {method} | {injection} | " + " | ".join(cells) + " |")
    # "first" among the injections searched: a gap in the grid hides where it is really reached
    searched = ", ".join(str(n) for n in sorted({p.injection for p in result.points}))
    lines += ["", f"Injections searched: {searched}.", ""]
    lines += ["| method | " + " | ".join(f"first at {t:g} sigma" for t in THRESHOLDS) + " |"]
    lines.append("| --- | " + " | ".join("---" for _ in THRESHOLDS) + " |")
    for method, reaches in result.reach.items():
        cells = []
        for r in reaches:
            text = "not reached" if r.injection is None else f"{r.injection} injected"
            if r.undecided_below:
                text += f" (undecided at {', '.join(map(str, r.undecided_below))})"
            cells.append(text)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += _truth_lines(result.points) + _fit_bias_lines(result.fit_bias)
    return "\n".join(lines) + "\n"


def _fit_bias_lines(bias: Mapping[str, FitBias]) -> list[str]:
    """The background-alone fit over truth per method and efficiency ([] without labels)."""
    if not bias:
        return []
    efficiencies = next(iter(bias.values())).efficiencies
    lines = [
        "",
        "The sideband fit of each cell's selected background alone over the true selected "
        "background in its signal region, median over windows and searches (1: no bias; below "
        "1: the selection keeps more background in the signal region than the fit predicts).",
        "",
        "| method | searches | " + " | ".join(f"{e:g}" for e in efficiencies) + " |",
        "| --- | --- | " + " | ".join("---" for _ in efficiencies) + " |",
    ]
    for method, row in bias.items():
        cells = ["n/a" if np.isnan(v) else f"{v:.3f}" for v in row.median]
        lines.append(f"| {method} | {row.n_searches} | " + " | ".join(cells) + " |")
    return lines


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _truth_lines(points: Sequence[SensitivityPoint]) -> list[str]:
    """The best cells' selections by truth label: where the fitted background comes from."""
    known = [p for p in points if p.signal_selected_in_sr is not None and p.injection > 0]
    if not known:
        return []
    lines = [
        "",
        "Best cells with signal, by truth label: what the selection passes in the signal region "
        "and in the sidebands (signal / background), and the background the sideband fit "
        "predicts in the signal region; the fit reads the sidebands' signal as background. The "
        "same fit on the selected background alone shows what it does without signal.",
        "",
        "| method | injected | seed | window | efficiency | SR | sidebands | "
        "fitted SR background | fitted to the background alone |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in sorted(known, key=lambda q: (q.method, q.injection, q.seed)):
        lines.append(
            f"| {p.method} | {p.injection} | {p.seed} | {p.window} | {p.efficiency:g} | "
            f"{p.signal_selected_in_sr} / {p.background_selected_in_sr} | "
            f"{p.signal_selected_in_sidebands} / {p.background_selected_in_sidebands} | "
            f"{p.fitted_background_sr:.1f} | {_number(p.background_only_fit_sr)} |"
        )
    return lines
