"""A whole search from a configuration: data -> windows -> detectors -> scans -> look-elsewhere.

Every unit of work (one detector on one window; one method's look-elsewhere study) is a task with
its own seed, run through the configured executor and checkpointed in the results folder as soon
as it finishes, so a killed run resumes where it stopped and gives the same numbers.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.config import DataConfig, SearchConfig
from analysis.data import ToySignal, build_features, inject_signal, make_toy, read_lhco, read_table
from analysis.data.duplicates import read_files
from analysis.data.validation import check_background
from analysis.executor import configured_executor, limited_threads
from analysis.regions import Window, sliding_windows
from analysis.stats import (
    ReferenceScores,
    ScanConfig,
    bias_test,
    fixed_width_edges,
    look_elsewhere,
    scan_spectra,
    select_spectra,
    window_limits,
)
from analysis.store import ResultStore, data_fingerprint, write_json
from anomaly import make_detector

__all__ = [
    "ScoreTask",
    "SearchData",
    "SearchResult",
    "load_search_data",
    "run_search",
    "search_windows",
    "toy_signal",
]

log = logging.getLogger(__name__)

#: unit entries holding a template-quality test (`anomaly.results.Reference.quality`)
TEMPLATE_TEST, TEMPLATE_TEST_FIELDS = "template_test_", ("auc", "error", "n_a", "n_b", "z")
#: template events kept per CATHODE window for the report's plots
TEMPLATE_KEPT = 20_000
#: pseudo-data sets per injection of a window's bias test (mean pull error ~0.045)
BIAS_TOYS = 500


@dataclass(frozen=True)
class SearchData:
    """Events of a search (features in TeV) and the extra background of the idealized detector."""

    events: pd.DataFrame
    extra_background: pd.DataFrame | None
    description: dict[str, Any]


def toy_signal(config: DataConfig) -> ToySignal:
    """The toy resonance the data configuration asks for."""
    inj = config.injection
    return ToySignal(mjj=inj.mjj, width=inj.width, mj1=inj.mj1, mj2=inj.mj2)


def load_search_data(config: DataConfig, seed: np.random.SeedSequence) -> SearchData:
    """Read or generate the events, inject signal, build features, keep the mjj range."""
    data_seed, injection_seed, extra_seed = seed.spawn(3)
    extra = None
    if config.source == "toy":
        raw = make_toy(
            config.n_background,
            config.injection.n_signal,
            signal=toy_signal(config),
            random_state=data_seed,
        )
        extra = build_features(
            make_toy(config.n_background, random_state=extra_seed), config.features
        )
        events = build_features(raw, config.features)
    elif config.source == "lhco":
        raw = read_files(config.paths, read_lhco, config.duplicates)
        if config.signal_path is not None and config.injection.n_signal > 0:
            pool = read_lhco(config.signal_path)
            raw = inject_signal(
                raw, pool, n_signal=config.injection.n_signal, random_state=injection_seed
            ).data
        events = build_features(raw, config.features)
    else:
        columns = ["mjj", *config.features]
        events = read_files(config.paths, lambda path: read_table(path, columns), config.duplicates)
    low, high = config.mjj_range
    keep = (events["mjj"] >= low) & (events["mjj"] < high)
    if not keep.any():
        raise ValueError(f"no event has mjj in data.mjj_range [{low}, {high}] TeV")
    events = events[keep].reset_index(drop=True)
    if extra is not None:
        extra = extra[(extra["mjj"] >= low) & (extra["mjj"] < high)].reset_index(drop=True)
    description = {
        "source": config.source,
        "n_events": len(events),
        "n_signal": int(events["label"].sum()) if "label" in events else None,
        "features": list(config.features),
        "mjj_range": [low, high],
    }
    return SearchData(events, extra, description)


def search_windows(config: SearchConfig) -> list[Window]:
    """The sliding windows of the configuration."""
    w = config.windows
    return sliding_windows(
        w.low, w.high, w.width, w.step, spacing=w.spacing, sideband_width=w.sideband_width
    )


@dataclass(frozen=True)
class ScoreTask:
    """One detector fitted on one window; it writes its scores into the store when done."""

    key: str
    method: str
    options: dict[str, Any]
    window: Window
    X: np.ndarray
    mjj: np.ndarray
    in_sr: np.ndarray
    background: np.ndarray | None
    background_mjj: np.ndarray | None
    labels: np.ndarray | None
    seed: int
    store_root: str
    fingerprint: str
    threads: int = 1


def _run_score_task(task: ScoreTask) -> str:
    """Fit the task's detector (with `task.threads` threads) and store its window scores."""
    with limited_threads(task.threads):
        return _score_window(task)


def _score_window(task: ScoreTask) -> str:
    start = time.perf_counter()
    detector = make_detector(task.method, **task.options, random_state=task.seed)
    extras = {}
    if detector.uses_background:
        if task.background is None:
            raise ValueError(f"{task.method} needs an extra background sample (toy data only)")
        extras["background"] = task.background
        extras["background_mjj"] = task.background_mjj
    if detector.uses_labels:
        if task.labels is None:
            raise ValueError(f"{task.method} needs truth labels; the data have none")
        extras["labels"] = task.labels
    try:
        result = detector.fit(task.X, task.mjj, task.in_sr, **extras).result_
    except ValueError as err:
        raise ValueError(f"{task.method} on window {task.window.name}: {err}") from err
    arrays = {"scores": result.scores, "honest": result.honest}
    reference = result.reference
    if reference is not None and reference.calibrates:
        # The reference's out-of-fold pass fractions calibrate the background after each cut.
        arrays["reference_scores"] = reference.scores
        arrays["reference_mjj"] = reference.mjj
        # A subsample of the reference events, for the report's comparison plot.
        rng = np.random.default_rng(task.seed)
        arrays["template"] = reference.X[rng.permutation(len(reference.X))[:TEMPLATE_KEPT]]
    for name, test in (reference.quality if reference is not None else {}).items():
        arrays[f"{TEMPLATE_TEST}{name}"] = np.array([test[k] for k in TEMPLATE_TEST_FIELDS])
    seconds = time.perf_counter() - start
    ResultStore(task.store_root, task.fingerprint).save_arrays(
        task.key, seconds=np.array(seconds), **arrays
    )
    log.info("%s on window %s: fitted and scored in %.0f s", task.method, task.window.name, seconds)
    return task.key


@dataclass(frozen=True)
class MethodOutcome:
    """Everything one method of a search produced."""

    label: str
    scores: np.ndarray
    spectra: Any
    scan: Any
    lee: dict[str, Any] | None
    seconds: float
    templates: dict[int, np.ndarray]
    #: events per window whose score came from models that all trained on them (biased)
    n_seen: list[int]
    #: per window, the reference's template-quality tests by name (see anomaly.template_quality)
    template_tests: list[dict[str, dict[str, float]]]
    #: per window, CLs upper limits at the method's limit efficiency (`WindowLimit.to_dict`)
    limits: list[dict[str, Any]] | None = None
    #: per window, bias tests and F-test choice (`BiasResult.to_dict`) when stats.bias_test
    bias: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class SearchResult:
    """A finished search: where its files are and the numbers of `results.json`."""

    output: Path
    results: dict[str, Any]
    outcomes: list[MethodOutcome]
    windows: list[Window]
    data: SearchData


def _method_label(config: SearchConfig, index: int) -> str:
    names = [m.name for m in config.methods]
    name = names[index]
    return name if names.count(name) == 1 else f"{name}-{index}"


def _window_rows(mjj: np.ndarray, window: Window) -> np.ndarray:
    return (mjj >= window.sb_low) & (mjj < window.sb_high)


def _score_tasks(
    config: SearchConfig,
    data: SearchData,
    windows: list[Window],
    store: ResultStore,
    seed: np.random.SeedSequence,
) -> list[ScoreTask]:
    features = list(config.data.features)
    events = data.events
    X, mjj = events[features].to_numpy(), events["mjj"].to_numpy()
    labels = events["label"].to_numpy() if "label" in events else None
    # One child seed per (method, window) in a fixed order: results do not depend on scheduling.
    seeds = seed.spawn(len(config.methods) * len(windows))
    tasks = []
    for m, method in enumerate(config.methods):
        for w, window in enumerate(windows):
            key = f"scores/{_method_label(config, m)}/window{w:02d}"
            if store.has(key):
                continue
            rows = _window_rows(mjj, window)
            background = background_mjj = None
            if data.extra_background is not None:
                extra = data.extra_background
                in_sr = window.sr_mask(extra["mjj"])
                background = extra.loc[in_sr, features].to_numpy()
                background_mjj = extra.loc[in_sr, "mjj"].to_numpy()
            tasks.append(
                ScoreTask(
                    key=key,
                    method=method.name,
                    options=dict(method.options),
                    window=window,
                    X=X[rows],
                    mjj=mjj[rows],
                    in_sr=window.sr_mask(mjj[rows]),
                    background=background,
                    background_mjj=background_mjj,
                    labels=None if labels is None else labels[rows],
                    seed=int(seeds[m * len(windows) + w].generate_state(1)[0] >> 1),
                    store_root=str(store.root),
                    fingerprint=store.fingerprint,
                    threads=config.executor.threads_per_task,
                )
            )
    return tasks


@dataclass(frozen=True)
class MethodScores:
    """One method's stored units gathered over the windows."""

    #: (n_windows, n_events); events outside a window's range never pass its cuts
    matrix: np.ndarray
    seconds: float
    templates: dict[int, np.ndarray]
    #: events per window whose score came from models that all trained on them (biased)
    n_seen: list[int]
    #: per window the method's own background reference, or None
    references: list[ReferenceScores] | None
    #: per window, the reference's template-quality tests by name (see anomaly.template_quality)
    template_tests: list[dict[str, dict[str, float]]]


def _gather_scores(
    store: ResultStore, label: str, windows: list[Window], mjj: np.ndarray
) -> MethodScores:
    matrix = np.empty((len(windows), mjj.size))
    seconds = 0.0
    templates, n_seen, references, tests = {}, [], [], []
    for w, window in enumerate(windows):
        unit = store.load_arrays(f"scores/{label}/window{w:02d}")
        tests.append(
            {
                key.removeprefix(TEMPLATE_TEST): dict(
                    zip(TEMPLATE_TEST_FIELDS, map(float, value), strict=True)
                )
                for key, value in unit.items()
                if key.startswith(TEMPLATE_TEST)
            }
        )
        if "template" in unit:
            templates[w] = unit["template"]
        if "reference_scores" in unit:
            references.append(ReferenceScores(unit["reference_mjj"], unit["reference_scores"]))
        rows = _window_rows(mjj, window)
        scores = unit["scores"]
        matrix[w] = scores.min() - 1.0
        matrix[w, rows] = scores
        seconds += float(unit["seconds"])
        n_seen.append(int((~unit["honest"]).sum()))
    if any(n_seen):
        log.warning(
            "%s: %d sideband events are scored by models that all trained on them (e.g. a "
            "sideband density); their selection, and so the background fit, may be biased",
            label,
            sum(n_seen),
        )
    complete = references if len(references) == len(windows) else None
    return MethodScores(matrix, seconds, templates, n_seen, complete, tests)


def run_search(config: SearchConfig, *, executor: Any = None) -> SearchResult:
    """Run (or resume) the search of `config` and write results, plots and the report."""
    from analysis.report import write_report

    store = ResultStore(config.output, config.fingerprint()).open()
    write_json(config.output / "config.json", config.model_dump(mode="json"))
    data_seed, task_seed, lee_seed = np.random.SeedSequence(config.seed).spawn(3)
    log.info("loading data (%s)", config.data.source)
    data = load_search_data(config.data, data_seed)
    store.check_data(data_fingerprint(data.events))
    windows = search_windows(config)
    check_background(data.events, windows, min_sr=10, min_sb=10)
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(configured_executor(config.executor))
        outcomes = _run_units(config, data, windows, store, executor, task_seed, lee_seed)
    results = write_report(config, data, windows, outcomes)
    return SearchResult(Path(config.output), results, outcomes, windows, data)


def _run_units(config, data, windows, store, executor, task_seed, lee_seed) -> list[MethodOutcome]:
    mjj = data.events["mjj"].to_numpy()
    tasks = _score_tasks(config, data, windows, store, task_seed)
    log.info(
        "%d detector fits to run (%d already done)",
        len(tasks),
        len(config.methods) * len(windows) - len(tasks),
    )
    executor.map(_run_score_task, tasks)

    edges = fixed_width_edges(*config.data.mjj_range, config.stats.bin_width)
    scan_config = ScanConfig(
        efficiencies=tuple(config.stats.efficiencies),
        n_params=config.stats.n_params,
        resolution=config.stats.resolution,
    )
    outcomes = []
    lee_seeds = lee_seed.spawn(len(config.methods))
    for m in range(len(config.methods)):
        label = _method_label(config, m)
        gathered = _gather_scores(store, label, windows, mjj)
        spectra = select_spectra(
            mjj, gathered.matrix, windows, edges, scan_config.efficiencies, gathered.references
        )
        scan = scan_spectra(spectra, scan_config)
        failed = [c.window for c in scan.closure or () if not c.passed]
        if failed:
            log.warning(
                "%s: the classifier tells the reference from the data beyond what the "
                "observed excess explains in %s; their excesses are not used",
                label,
                ", ".join(failed),
            )
        lee = None
        if config.stats.n_pseudo > 0 and np.isfinite(scan.max_significance):
            key = f"lee/{label}"
            if not store.has(key):
                log.info(
                    "look-elsewhere for %s: %d pseudo-experiments", label, config.stats.n_pseudo
                )
                result = look_elsewhere(
                    spectra,
                    scan_config,
                    n_pseudo=config.stats.n_pseudo,
                    executor=executor,
                    random_state=lee_seeds[m],
                    observed=scan,
                )
                store.save_json(key, result.to_dict())
            lee = store.load_json(key)
            excluded = lee.get("excluded_cells") or []
            if excluded:
                log.warning(
                    "%s: cells %s have heavy-tailed background-only local Z (sparse or sculpted "
                    "selections); they are left out",
                    label,
                    excluded,
                )
                scan = scan.excluding(excluded)
        limits, bias = _limits_and_bias(config, store, label, spectra, scan, scan_config, m)
        outcomes.append(
            MethodOutcome(
                label,
                gathered.matrix,
                spectra,
                scan,
                lee,
                gathered.seconds,
                gathered.templates,
                gathered.n_seen,
                gathered.template_tests,
                limits,
                bias,
            )
        )
    return outcomes


def limit_efficiency(config: SearchConfig, scan: Any) -> float:
    """stats.limit_efficiency, else the most significant cell's efficiency, else the tightest."""
    if config.stats.limit_efficiency is not None:
        return float(config.stats.limit_efficiency)
    if np.isfinite(scan.max_significance):
        return float(scan.efficiencies[scan.best[1]])
    return float(np.min(scan.efficiencies))


def _limits_and_bias(config, store, label, spectra, scan, scan_config, m):
    """CLs limits per window (and bias tests with stats.bias_test), checkpointed in the store."""
    efficiency = limit_efficiency(config, scan)
    e = int(np.flatnonzero(np.isclose(scan.efficiencies, efficiency))[0])
    key = f"limits/{label}"
    if not store.has(key):
        log.info("CLs limits for %s at efficiency %g", label, efficiency)
        limits = window_limits(spectra, efficiency, scan_config, usable=scan.fit_valid[:, e])
        store.save_json(key, [limit.to_dict() for limit in limits])
    bias = None
    if config.stats.bias_test:
        key = f"bias/{label}"
        if not store.has(key):
            log.info("bias tests for %s at efficiency %g", label, efficiency)
            rows = []
            for w in range(len(spectra.windows)):
                rng = np.random.default_rng([config.seed, 12, m, w])
                try:
                    rows.append(
                        bias_test(
                            spectra, w, efficiency, scan_config, BIAS_TOYS, random_state=rng
                        ).to_dict()
                    )
                except ValueError as err:
                    rows.append({"window": w, "efficiency": efficiency, "error": str(err)})
            store.save_json(key, rows)
        bias = store.load_json(key)
    return store.load_json(f"limits/{label}"), bias
