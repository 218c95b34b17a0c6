"""End-to-end sensitivity: the whole search at each injected signal count and seed (issue 15).

Each (injection, seed) is the search of `configs/sensitivity.yaml` (`analysis.sensitivity.
point_config`: the config's windows, methods and look-elsewhere study with that many signal
events injected and that master seed), run in a child process of its own so that its wall
time, CPU time and peak memory are its own. A finished search leaves a unit record (each
method's best cell, global significance and cost); a unit whose record exists is skipped, so a
cut-off study resumes. The summary gives per method the global significance per injection and
seed, the smallest injection at which most seeds reach a global 3 and 5 sigma
(`analysis.sensitivity.first_reach`), the global p-values without signal, the plot of global
significance against injection, and the missing units (listed, never filled in).

    PYTHONPATH=. python benchmarks/sensitivity.py --data-dir ../shared/data/lhco
    PYTHONPATH=. python benchmarks/sensitivity.py --injections 0 1000 --seeds 0
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from analysis.config import load_config
from analysis.executor import InProcessExecutor
from analysis.sensitivity import (
    THRESHOLDS,
    SensitivityPoint,
    SensitivityResult,
    markdown,
    point_config,
    points_of,
    summarise,
)
from analysis.store import write_atomic, write_json
from analysis.truth import CellTruth
from benchmarks.sic_vs_injection import (
    REPO,
    RESULTS,
    STOP_AT_HELP,
    git_commit,
    stop_time,
    with_data_dir,
)

CONFIG = REPO / "configs" / "sensitivity.yaml"
INJECTIONS = [0, 250, 500, 750, 1000, 1500, 2000]
SEEDS = [0, 1, 2]


def unit_path(work: Path, injection: int, seed: int) -> Path:
    """Where a finished search's record lives."""
    return work / f"inj{injection}" / f"seed{seed}" / "unit.json"


def point_search(config, injection: int, seed: int, work: Path):
    """The search config of one unit, written into the unit's own folder."""
    search = unit_path(work, injection, seed).parent / "search"
    return point_config(config, injection, seed).model_copy(update={"output": search})


def search_record(result, injection: int, seed: int) -> dict:
    """What a unit keeps of its search: each method's best cell and every cell's truth."""
    return {
        "points": [p.to_dict() for p in points_of(result, injection, seed)],
        "truth": {o.label: o.truth.to_dict() for o in result.outcomes if o.truth is not None},
    }


def run_unit(config, injection: int, seed: int, work: Path) -> None:
    """Run one search in this process and write its record: best cells, cost, machine load."""
    from analysis.workflow import run_search

    point = point_search(config, injection, seed, work)
    load = os.getloadavg()
    code = git_commit()  # the code this process runs: a commit made while it runs is not it
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_search(point, executor=InProcessExecutor(progress=False))
    record = {
        "injection": injection,
        "seed": seed,
        **search_record(result, injection, seed),
        "n_signal_in_data": result.data.description.n_signal,
        "wall_seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_average_start": list(load),
        "load_average_end": list(os.getloadavg()),
        "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code": code,
    }
    write_json(unit_path(work, injection, seed), record)


def rewrite_points(config, injection: int, seed: int, work: Path) -> None:
    """Rewrite a finished unit's best cells and truth with the current code from its search.

    The search resumes from its results folder (every detector unit and pseudo-experiment is
    read back, nothing is trained again), so the record keeps the cost and code of the run
    that measured it and names the code and time of the rewrite beside them.
    """
    from analysis.workflow import run_search

    path = unit_path(work, injection, seed)
    record = json.loads(path.read_text())
    code, wall = git_commit(), time.perf_counter()
    result = run_search(
        point_search(config, injection, seed, work), executor=InProcessExecutor(progress=False)
    )
    record.update(search_record(result, injection, seed))
    record["points_rewritten"] = {
        "code": code,
        "wall_seconds": time.perf_counter() - wall,
        "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_json(path, record)


def plot(result: SensitivityResult, path: Path) -> Path:
    """Global significance of each method's best cell against injection: seeds and median."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in result.reach:
        mine = [
            p for p in result.points if p.method == method and p.global_significance is not None
        ]
        injections = sorted({p.injection for p in mine})
        medians = [
            np.median([p.global_significance for p in mine if p.injection == n]) for n in injections
        ]
        (line,) = ax.plot(injections, medians, marker="o", label=f"{method} (median)")
        for limit, marker in ((False, "."), (True, "^")):
            shown = [p for p in mine if p.global_is_limit is limit]
            ax.scatter(
                [p.injection for p in shown],
                [p.global_significance for p in shown],
                marker=marker,
                color=line.get_color(),
                alpha=0.5,
                label=f"{method}, lower limits" if limit and shown else None,
            )
    for threshold in THRESHOLDS:
        ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("injected signal events")
    ax.set_ylabel("global significance of the best cell")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def record_truths(records: list[dict]) -> dict[str, list[CellTruth]]:
    """Per method, the cells' truth of each search whose record keeps it."""
    truths: dict[str, list[CellTruth]] = {}
    for record in records:
        for method, truth in record.get("truth", {}).items():
            truths.setdefault(method, []).append(CellTruth.from_dict(truth))
    return truths


def write_summary(args, units: list[tuple[int, int]], efficiencies: list[float]) -> None:
    """Gather the finished searches into the JSON, the markdown table and the plot."""
    code = git_commit()
    records, missing = [], []
    for injection, seed in units:
        path = unit_path(args.work_dir, injection, seed)
        if path.exists():
            records.append(json.loads(path.read_text()))
        else:
            missing.append({"injection": injection, "seed": seed})
    points = [SensitivityPoint(**p) for r in records for p in r["points"]]
    result = summarise(points, args.work_dir, record_truths(records), efficiencies)
    table = markdown(result)
    if missing:
        table += (
            "\nSearches not run (injection, seed): "
            + ", ".join(f"({m['injection']}, {m['seed']})" for m in missing)
            + "\n"
        )
    write_atomic(args.output.with_suffix(".md"), table)
    plots = [str(plot(result, args.output.with_suffix(".png")))] if points else []
    write_json(
        args.output,
        {
            "benchmark": "sensitivity",
            "config": str(args.config),
            "data_dir": str(Path(args.data_dir).resolve()),
            "code": code,
            "machine": {"cpu_count": os.cpu_count(), "load_average_now": list(os.getloadavg())},
            "thresholds": list(THRESHOLDS),
            "rule": "analysis.sensitivity: a seed reaches a threshold when its global "
            "significance (or its lower limit) is at least the threshold, misses it when its "
            "local or a measured global significance is below, and is undecided otherwise; an "
            "injection reaches it when more than half of its seeds do",
            "n_units": len(units),
            "n_finished": len(records),
            "missing": missing,
            "reach": {m: [r.to_dict() for r in rs] for m, rs in result.reach.items()},
            "null_global_p_values": result.null_p_values,
            "background_alone_fit_over_truth": {
                "rule": "analysis.truth.background_fit_bias: per efficiency, the median over "
                "windows and searches of each cell's sideband fit of its selected background "
                "alone over the true selected background in the signal region",
                "methods": {m: b.to_dict() for m, b in result.fit_bias.items()},
            },
            "units": records,
            "plots": plots,
        },
    )


def main(argv: list[str] | None = None) -> None:
    """Run the pending searches of the study (or one, with --unit) and write the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared/data/lhco")
    parser.add_argument("--work-dir", type=Path, default=RESULTS / "sensitivity_units")
    parser.add_argument("--output", type=Path, default=RESULTS / "sensitivity.json")
    parser.add_argument("--injections", nargs="+", type=int, default=INJECTIONS)
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument("--stop-at", help=f"no search is started after this time: {STOP_AT_HELP}")
    parser.add_argument("--summary-only", action="store_true", help="run nothing, summarise")
    parser.add_argument("--unit", nargs=2, type=int, metavar=("INJECTION", "SEED"))
    parser.add_argument(
        "--rewrite-points",
        nargs=2,
        type=int,
        metavar=("INJECTION", "SEED"),
        help="rewrite a finished unit's best cells and truth from its stored search (no "
        "retraining)",
    )
    args = parser.parse_args(argv)
    config = with_data_dir(load_config(args.config), args.data_dir)
    if args.unit:
        run_unit(config, *args.unit, args.work_dir)
        return
    if args.rewrite_points:
        rewrite_points(config, *args.rewrite_points, args.work_dir)
        return
    units = [(n, s) for n in sorted(args.injections) for s in args.seeds]
    pending = [u for u in units if not unit_path(args.work_dir, *u).exists()]
    print(f"{len(units) - len(pending)} of {len(units)} searches done", file=sys.stderr)
    stop = stop_time(args.stop_at) if args.stop_at else None
    for i, (injection, seed) in enumerate([] if args.summary_only else pending):
        if stop is not None and dt.datetime.now(dt.UTC) >= stop:
            print(f"stop time {args.stop_at} UTC reached: {len(pending) - i} searches left")
            break
        print(f"[{i + 1}/{len(pending)}] injection {injection} seed {seed}", file=sys.stderr)
        command = [sys.executable, __file__, "--unit", str(injection), str(seed)]
        command += ["--config", str(args.config), "--data-dir", str(args.data_dir)]
        subprocess.run([*command, "--work-dir", str(args.work_dir)], check=True)
        write_summary(args, units, config.stats.efficiencies)
    write_summary(args, units, config.stats.efficiencies)


if __name__ == "__main__":
    main()
