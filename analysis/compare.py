"""Methods compared fairly: the same labelled data, injections and seeds for every detector.

Each (injection, seed) builds one benchmark: data with injected signal, an extra background
sample for the idealized detector and a labelled test set in the signal region that no model
trains on. Each detector is fitted on the data's window (an `analysis.units.DetectorUnit`, as a
search fits it) and scored on the test set; every (injection, seed, method) is a checkpointed
unit run through the executor, seeded by `SeedSequence([seed, injection, benchmark seed])`, and
tied to the contents of its benchmark (a resumed comparison never mixes in other data). The
density methods with equal density settings (CATHODE, LaCATHODE, ANODE, R-ANODE) take the seed
of the first of them and share one sideband fit per (injection, seed): each gets the results
it gets alone with that seed; the fit is stored once with its cost and resumed from
(`analysis.sideband_fits`).
Records hold wall and CPU seconds per method (the shared fit excluded) and what a detector
reports besides scores (R-ANODE: `signal_fractions`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.config import SearchConfig
from analysis.data import lhco_benchmark_split, make_toy
from analysis.executor import configured_executor
from analysis.inputs import event_features, toy_signal
from analysis.metrics import compute_metrics, roc_curve
from analysis.plots import plot_roc_sic
from analysis.regions import Window
from analysis.sideband_fits import is_density, shared_sideband, sideband_key
from analysis.store import JSON, ResultStore, data_fingerprint, write_atomic, write_json
from analysis.units import (
    DetectorUnit,
    Executor,
    fit_unit,
    make_unit_detector,
    method_labels,
    sideband_groups,
    unit_seeds,
    window_events,
)

__all__ = ["Benchmark", "compare_folder", "make_benchmark", "run_compare"]

#: points kept of each ROC curve for plots and JSON
_CURVE_POINTS = 400


def compare_folder(config: SearchConfig) -> Path:
    """Where a comparison writes its results: `compare/` inside the output folder."""
    return Path(config.output) / "compare"


@dataclass(frozen=True)
class Benchmark:
    """Feature tables (TeV) of one (injection, seed): data, extra background, SR test set."""

    data: pd.DataFrame
    extra_background: pd.DataFrame
    test: pd.DataFrame

    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the contents of its three tables."""
        parts = (data_fingerprint(t) for t in (self.data, self.extra_background, self.test))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _toy_in_region(
    n_background: int, n_signal: int, config: SearchConfig, sr: tuple[float, float], seed
) -> pd.DataFrame:
    """Toy events drawn until the SR holds `n_background` background and `n_signal` signal."""
    parts, need = [], np.array([n_background, n_signal])
    rng = np.random.default_rng(seed)
    while need.any():
        # About 14% of the toy background and 60% of the signal fall in a 0.4 TeV SR near 3.5.
        raw = make_toy(
            int(need[0] * 8 + 1000),
            int(need[1] * 2 + 100),
            signal=toy_signal(config.data),
            random_state=rng,
        )
        table = event_features(raw, config.data)
        table = table[(table["mjj"] >= sr[0]) & (table["mjj"] < sr[1])]
        for label in (0, 1):
            rows = table[table["label"] == label].iloc[: need[label]]
            parts.append(rows)
            need[label] -= len(rows)
    return pd.concat(parts, ignore_index=True)


def _benchmark_seed(config: SearchConfig, injection: int, seed: int) -> np.random.SeedSequence:
    """Root of one benchmark's seeds: children 0-2 its data, 3 its detectors (one each)."""
    return np.random.SeedSequence([config.seed, injection, seed])


def make_benchmark(config: SearchConfig, injection: int, seed: int) -> Benchmark:
    """The data, extra background and test set of one (injection, seed)."""
    cmp = config.compare
    features = functools.partial(event_features, config=config.data)
    if config.data.source == "lhco":
        if cmp.lhco_directory is None:
            raise ValueError("compare.lhco_directory must name the folder of the LHCO part files")
        split = lhco_benchmark_split(
            cmp.lhco_directory, n_inject=injection, region=cmp.signal_region, random_state=seed
        ).map(features)
        sr = split.test["mjj"].between(*cmp.signal_region, inclusive="left")
        return Benchmark(split.data, split.extra_background, split.test[sr])
    if config.data.source != "toy":
        raise ValueError("compare needs labelled data: data.source 'toy' or 'lhco'")
    data_seed, extra_seed, test_seed = _benchmark_seed(config, injection, seed).spawn(3)
    signal = toy_signal(config.data)
    data = features(
        make_toy(config.data.n_background, injection, signal=signal, random_state=data_seed)
    )
    extra = features(make_toy(config.data.n_background, random_state=extra_seed))
    test = _toy_in_region(
        cmp.n_test_background, cmp.n_test_signal, config, cmp.signal_region, test_seed
    )
    return Benchmark(data, extra, test)


@dataclass(frozen=True)
class CompareTask:
    """Detector units on one benchmark, fitted in turn; each stores its metrics and ROC curve.

    With a `sideband_key` the units are density detectors of one group: the first one's
    sideband fit is made once, handed to all, and its cost stored under that key.
    """

    keys: tuple[str, ...]
    units: tuple[DetectorUnit, ...]
    sideband_key: str | None
    test: pd.DataFrame
    features: tuple[str, ...]
    min_background: int
    store_root: str
    fingerprint: str


def _run_compare_task(task: CompareTask) -> tuple[str, ...]:
    """Fit the detectors on the benchmark's window (sharing a sideband fit), score the test set."""
    store = ResultStore(task.store_root, task.fingerprint)
    units = task.units
    if task.sideband_key is not None:
        shared = shared_sideband(store, task.sideband_key, units[0], task.keys)
        units = tuple(dataclasses.replace(unit, sideband=shared) for unit in units)
    for key, unit in zip(task.keys, units, strict=True):
        _run_method(store, key, unit, task)
    return task.keys


def _run_method(store: ResultStore, key: str, unit: DetectorUnit, task: CompareTask) -> None:
    """Fit one detector unit, score the held-out test set, store metrics and ROC curve."""
    detector = make_unit_detector(unit)
    labels = unit.events.labels
    if detector.uses_labels and labels is not None:
        n_signal = int(labels[unit.events.in_sr].sum())
        if n_signal < detector.n_folds:
            # A supervised reference needs signal to learn from: nothing to compare at this point.
            reason = f"{n_signal} signal events in the signal region, fewer than the folds"
            store.save_json(key, {"skipped": reason})
            return
    start, cpu = time.perf_counter(), time.process_time()
    fitted = fit_unit(unit)
    test = task.test
    scores = fitted.detector.score_samples(
        test[list(task.features)].to_numpy(), test["mjj"].to_numpy()
    )
    labels = test["label"].to_numpy()
    metrics = compute_metrics(labels, scores, min_background=task.min_background)
    roc = roc_curve(labels, scores)
    keep = np.unique(np.linspace(0, len(roc.eps_s) - 1, _CURVE_POINTS).astype(int))
    store.save_arrays(f"{key}_roc", eps_s=roc.eps_s[keep], eps_b=roc.eps_b[keep])
    cost = {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}
    if task.sideband_key is not None:
        cost["sideband"] = task.sideband_key
    # The JSON record is written last: its presence marks the unit finished.
    store.save_json(key, {**metrics.to_dict(), **fitted.result.diagnostics, **cost})


def _compare_tasks(config: SearchConfig, store: ResultStore) -> list[CompareTask]:
    """The unfinished units, each benchmark's contents checked against the folder's.

    The density methods of one group (`analysis.units.sideband_groups`) run as one task with
    the seed of their first member, so they fit the same sideband model and fit it once.
    """
    cmp = config.compare
    window = Window(*cmp.signal_region, sideband_width=cmp.sideband_width)
    labels = method_labels(cmp.methods)
    groups = sideband_groups(cmp.methods)
    features = tuple(config.data.features)
    tasks = []
    for injection in cmp.injections:
        for seed in cmp.seeds:
            benchmark = make_benchmark(config, injection, seed)
            store.check_data(benchmark.fingerprint(), part=f"inj{injection}/seed{seed}")
            seeds = unit_seeds(_benchmark_seed(config, injection, seed).spawn(4)[3], len(labels))
            events = window_events(window, benchmark.data, features, benchmark.extra_background)
            prefix = f"compare/inj{injection}/seed{seed}"
            for group in groups:
                pending = [m for m in group if not store.has(f"{prefix}/{labels[m]}")]
                if not pending:
                    continue
                shares = is_density(cmp.methods[group[0]].name)
                units = tuple(
                    DetectorUnit(
                        method=cmp.methods[m].name,
                        options=dict(cmp.methods[m].options),
                        window=window,
                        seed=seeds[group[0]],
                        threads=config.executor.threads_per_task,
                        events=events,
                    )
                    for m in pending
                )
                tasks.append(
                    CompareTask(
                        tuple(f"{prefix}/{labels[m]}" for m in pending),
                        units,
                        sideband_key(injection, seed, labels[group[0]]) if shares else None,
                        benchmark.test,
                        features,
                        cmp.min_background,
                        str(store.root),
                        store.fingerprint,
                    )
                )
    return tasks


def run_compare(config: SearchConfig, *, executor: Executor | None = None) -> JSON:
    """Compare the configured methods; write compare.json, compare.md and ROC/SIC plots."""
    # Its own folder: a comparison and a search of one config may share the output folder.
    store = ResultStore(compare_folder(config), config.fingerprint("compare")).open()
    tasks = _compare_tasks(config, store)
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(configured_executor(config.executor))
        executor.map(_run_compare_task, tasks)
    return _summarise(config, store, method_labels(config.compare.methods))


def _summarise(config: SearchConfig, store: ResultStore, labels: list[str]) -> JSON:
    cmp, output = config.compare, compare_folder(config)
    rows, summary, plots = [], [], []
    for injection in cmp.injections:
        curves = {}
        for label in labels:
            records = []
            for seed in cmp.seeds:
                key = f"compare/inj{injection}/seed{seed}/{label}"
                record = store.load_json(key)
                rows.append({"injection": injection, "seed": seed, "method": label, **record})
                records.append(record)
                if seed == cmp.seeds[0] and "skipped" not in record:
                    roc = store.load_arrays(f"{key}_roc")
                    curves[label] = (roc["eps_s"], roc["eps_b"])
            summary.append(_median_row(injection, label, records))
        plots.append(
            plot_roc_sic(
                output / "plots" / f"roc_sic_inj{injection}.png",
                curves,
                f"{injection} injected signal events, seed {cmp.seeds[0]}",
            )
        )
    result = {
        "signal_region": list(cmp.signal_region),
        "min_background": cmp.min_background,
        "summary": summary,
        "runs": rows,
        "plots": [str(Path(p).relative_to(output)) for p in plots],
    }
    write_json(output / "compare.json", result)
    write_atomic(output / "compare.md", _markdown(result))
    return result


def _median_row(injection: int, label: str, records: list[JSON]) -> JSON:
    skipped = sorted({r["skipped"] for r in records if "skipped" in r})
    records = [r for r in records if "skipped" not in r]

    def median(key: str) -> float | None:
        # A rejection stored as None is infinite (no background passed): it still counts.
        infinite = key.startswith("rejection")
        values = [np.inf if r[key] is None and infinite else r[key] for r in records]
        values = [v for v in values if v is not None]
        m = float(np.median(values)) if values else None
        return None if m is None or np.isinf(m) else m

    return {
        "injection": injection,
        "method": label,
        "n_seeds": len(records),
        "skipped": skipped,
        **{
            k: median(k)
            for k in (
                "max_sic",
                "auc",
                "rejection_at_eps_s_0p2",
                "rejection_at_eps_s_0p5",
                "seconds",
            )
        },
    }


def _markdown(result: JSON) -> str:
    def fmt(value: float | None, spec: str) -> str:
        return "inf" if value is None else format(value, spec)

    lines = [
        "# Method comparison",
        "",
        f"Signal region {result['signal_region'][0]}-{result['signal_region'][1]} TeV; medians "
        f"over seeds; max SIC where at least {result['min_background']} test-background events "
        "survive.",
        "",
        "| injected | method | seeds | max SIC | AUC | 1/eps_B at eps_S=0.2 | at 0.5 | time [s] |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["summary"]:
        if not row["n_seeds"]:
            reason = "; ".join(row["skipped"])
            lines.append(f"| {row['injection']} | {row['method']} | 0 | n/a ({reason}) |||||")
            continue
        lines.append(
            f"| {row['injection']} | {row['method']} | {row['n_seeds']} | "
            f"{fmt(row['max_sic'], '.2f')} | {fmt(row['auc'], '.3f')} | "
            f"{fmt(row['rejection_at_eps_s_0p2'], '.1f')} | "
            f"{fmt(row['rejection_at_eps_s_0p5'], '.1f')} | {fmt(row['seconds'], '.0f')} |"
        )
    lines += [""] + [f"![ROC and SIC]({p})" for p in result["plots"]]
    return "\n".join(lines) + "\n"
