"""A whole search from a configuration: data -> windows -> detectors -> scans -> look-elsewhere.

Every unit of work (one detector on one window, `analysis.units`; one method's look-elsewhere
study, limits and bias tests) is a task with its own seed, run through the configured executor
and checkpointed in the results folder as soon as it finishes, so a killed run resumes where it
stopped and gives the same numbers. The records the stages hand on are in `analysis.results`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.config import MethodConfig, SearchConfig
from analysis.data.validation import check_background
from analysis.executor import configured_executor
from analysis.inputs import load_search_data, search_windows
from analysis.options import method_takes
from analysis.regions import Window
from analysis.report import write_report
from analysis.results import MethodOutcome, MethodScores, SearchData, SearchResult
from analysis.stats import (
    ReferenceScores,
    ScanConfig,
    ScanResult,
    SelectedSpectra,
    bias_test,
    fixed_width_edges,
    look_elsewhere,
    scan_spectra,
    select_spectra,
    window_limits,
)
from analysis.store import JSON, ResultStore, arrays_fingerprint, data_fingerprint, write_json
from analysis.truth import cell_truth
from analysis.units import (
    DetectorUnit,
    Executor,
    fit_unit,
    method_labels,
    unit_seeds,
    window_events,
)
from anomaly import DETECTORS
from anomaly.results import ControlSample, DetectorResult

__all__ = ["ScoreTask", "limit_efficiency", "run_search"]

log = logging.getLogger(__name__)

#: unit entries holding a template-quality test (`anomaly.results.Reference.quality`)
TEMPLATE_TEST, TEMPLATE_TEST_FIELDS = "template_test_", ("auc", "error", "n_a", "n_b", "z")
#: template events kept per CATHODE window for the report's plots
TEMPLATE_KEPT = 20_000
#: pseudo-data sets per injection of a window's bias test (mean pull error ~0.045)
BIAS_TOYS = 500


@dataclass(frozen=True)
class ScoreTask:
    """One detector unit whose window scores go into the store under `key` when done."""

    key: str
    unit: DetectorUnit
    store_root: str
    fingerprint: str


def _unit_arrays(result: DetectorResult, seed: int) -> dict[str, np.ndarray]:
    """The checkpoint of a detector result: scores, honesty, the calibrating reference, tests."""
    arrays = {"scores": result.scores, "honest": result.honest}
    reference = result.reference
    if reference is not None and reference.calibrates:
        # The reference's out-of-fold pass fractions calibrate the background after each cut.
        arrays["reference_scores"] = reference.scores
        arrays["reference_mjj"] = reference.mjj
        # A subsample of the reference events, for the report's comparison plot.
        rng = np.random.default_rng(seed)
        arrays["template"] = reference.X[rng.permutation(len(reference.X))[:TEMPLATE_KEPT]]
    if reference is not None and reference.control is not None:
        # Held-out sideband data and template scores: the template's mismodelling of each cut.
        arrays["control_data_scores"] = reference.control.data_scores
        arrays["control_model_scores"] = reference.control.model_scores
    for name, test in (reference.quality if reference is not None else {}).items():
        arrays[f"{TEMPLATE_TEST}{name}"] = np.array([test[k] for k in TEMPLATE_TEST_FIELDS])
    return arrays


def _run_score_task(task: ScoreTask) -> str:
    """Fit the task's detector and store its window scores."""
    fitted = fit_unit(task.unit)
    ResultStore(task.store_root, task.fingerprint).save_arrays(
        task.key,
        seconds=np.array(fitted.seconds),
        **_unit_arrays(fitted.result, task.unit.seed),
    )
    log.info(
        "%s on window %s: fitted and scored in %.0f s",
        task.unit.method,
        task.unit.window.name,
        fitted.seconds,
    )
    return task.key


def unit_options(method: MethodConfig) -> dict[str, Any]:
    """The detector options of a search unit: the method's, cross-fitted under a `fit` background.

    A fit of the selected sidebands needs their scores from models whose template never learned
    them (`anomaly.crossfit`), so a detector that offers `cross_fit` uses it unless told not to.
    """
    options = dict(method.options)
    unset = method.background == "fit" and "cross_fit" not in options
    if unset and method_takes(method.name, "cross_fit"):
        options["cross_fit"] = True
    return options


def _score_tasks(
    config: SearchConfig,
    data: SearchData,
    windows: list[Window],
    store: ResultStore,
    seed: np.random.SeedSequence,
) -> list[ScoreTask]:
    labels = method_labels(config.methods)
    # One child seed per (method, window) in a fixed order: results do not depend on scheduling.
    seeds = unit_seeds(seed, len(config.methods) * len(windows))
    tasks = []
    for m, method in enumerate(config.methods):
        for w, window in enumerate(windows):
            key = f"scores/{labels[m]}/window{w:02d}"
            if store.has(key):
                continue
            events = window_events(window, data.events, config.data.features, data.extra_background)
            unit = DetectorUnit(
                method=method.name,
                options=unit_options(method),
                window=window,
                seed=seeds[m * len(windows) + w],
                threads=config.executor.threads_per_task,
                events=events,
            )
            tasks.append(ScoreTask(key, unit, str(store.root), store.fingerprint))
    return tasks


def gather_scores(
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
            control = None
            if "control_data_scores" in unit:
                control = ControlSample(unit["control_data_scores"], unit["control_model_scores"])
            references.append(
                ReferenceScores(unit["reference_mjj"], unit["reference_scores"], control)
            )
        rows = window.mask(mjj)
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


def check_backgrounds(config: SearchConfig) -> None:
    """Refuse a `reference` background for a method without a background sample of its own."""
    for label, method in zip(method_labels(config.methods), config.methods, strict=True):
        if method.background == "reference" and not DETECTORS[method.name].calibrates_background:
            own = ", ".join(name for name in DETECTORS if DETECTORS[name].calibrates_background)
            raise ValueError(
                f"{label}: background 'reference' needs a detector with a background sample of "
                f"its own in the signal region ({own}); use background 'fit'"
            )


def search_seeds(config: SearchConfig) -> list[np.random.SeedSequence]:
    """The (data, detector units, look-elsewhere) seeds of a search, from its master seed."""
    return np.random.SeedSequence(config.seed).spawn(3)


def scan_settings(config: SearchConfig) -> tuple[np.ndarray, ScanConfig]:
    """The mjj binning and the cell analysis of a search's scan."""
    edges = fixed_width_edges(*config.data.mjj_range, config.stats.bin_width)
    scan_config = ScanConfig(
        efficiencies=tuple(config.stats.efficiencies),
        n_params=config.stats.n_params,
        resolution=config.stats.resolution,
    )
    return edges, scan_config


def run_search(config: SearchConfig, *, executor: Executor | None = None) -> SearchResult:
    """Run (or resume) the search of `config` and write results, plots and the report."""
    check_backgrounds(config)
    store = ResultStore(config.output, config.fingerprint()).open()
    write_json(config.output / "config.json", config.model_dump(mode="json"))
    data_seed, task_seed, lee_seed = search_seeds(config)
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


def _run_units(
    config: SearchConfig,
    data: SearchData,
    windows: list[Window],
    store: ResultStore,
    executor: Executor,
    task_seed: np.random.SeedSequence,
    lee_seed: np.random.SeedSequence,
) -> list[MethodOutcome]:
    mjj = data.events["mjj"].to_numpy()
    tasks = _score_tasks(config, data, windows, store, task_seed)
    log.info(
        "%d detector fits to run (%d already done)",
        len(tasks),
        len(config.methods) * len(windows) - len(tasks),
    )
    executor.map(_run_score_task, tasks)

    edges, scan_config = scan_settings(config)
    lee_seeds = lee_seed.spawn(len(config.methods))
    outcomes = []
    for m, label in enumerate(method_labels(config.methods)):
        gathered = gather_scores(store, label, windows, mjj)
        references = None
        if config.methods[m].background == "reference":
            if gathered.references is None:
                raise ValueError(
                    f"{label}: background 'reference' needs the detector's own background "
                    "sample with masses in every window; it has none"
                )
            references = gathered.references
        spectra = select_spectra(
            mjj, gathered.matrix, windows, edges, scan_config.efficiencies, references
        )
        scan = scan_spectra(spectra, scan_config)
        failed = [c.window for c in scan.closure or () if not (c.passed or c.covered)]
        if failed:
            log.warning(
                "%s: the classifier tells the reference from the data beyond what the "
                "observed excess explains in %s; their excesses are not used",
                label,
                ", ".join(failed),
            )
        lee = None
        if config.stats.n_pseudo > 0 and np.isfinite(scan.max_significance):
            lee = _look_elsewhere(config, store, executor, label, spectra, scan, lee_seeds[m])
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
        truth = None
        if "label" in data.events:
            signal = data.events["label"].to_numpy() == 1
            truth = cell_truth(mjj, signal, gathered.matrix, spectra, scan_config)
        outcomes.append(
            MethodOutcome(
                label=label,
                scores=gathered.matrix,
                spectra=spectra,
                scan=scan,
                lee=lee,
                seconds=gathered.seconds,
                templates=gathered.templates,
                n_seen=gathered.n_seen,
                template_tests=gathered.template_tests,
                limits=limits,
                bias=bias,
                truth=truth,
            )
        )
    return outcomes


def _look_elsewhere(
    config: SearchConfig,
    store: ResultStore,
    executor: Executor,
    label: str,
    spectra: SelectedSpectra,
    scan: ScanResult,
    seed: np.random.SeedSequence,
) -> JSON:
    """The method's look-elsewhere study, checkpointed in the store with the scan it is for."""
    # A resumed search whose scan changed (other scores, or other statistics code) must not
    # reuse pseudo-experiments of cells it no longer tests.
    observed = {"counts": spectra.counts, "tested": scan.fit_valid, "z": scan.significances}
    key = f"lee/{label}-{arrays_fingerprint(observed)}"
    if not store.has(key):
        log.info("look-elsewhere for %s: %d pseudo-experiments", label, config.stats.n_pseudo)
        result = look_elsewhere(
            spectra,
            scan.config,
            n_pseudo=config.stats.n_pseudo,
            executor=executor,
            random_state=seed,
            observed=scan,
        )
        store.save_json(key, result.to_dict())
    return store.load_json(key)


def limit_efficiency(config: SearchConfig, scan: ScanResult) -> float:
    """stats.limit_efficiency, else the most significant cell's efficiency, else the tightest."""
    if config.stats.limit_efficiency is not None:
        return float(config.stats.limit_efficiency)
    if np.isfinite(scan.max_significance):
        return float(scan.efficiencies[scan.best[1]])
    return float(np.min(scan.efficiencies))


def _limits_and_bias(
    config: SearchConfig,
    store: ResultStore,
    label: str,
    spectra: SelectedSpectra,
    scan: ScanResult,
    scan_config: ScanConfig,
    m: int,
) -> tuple[list[JSON], list[JSON] | None]:
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
