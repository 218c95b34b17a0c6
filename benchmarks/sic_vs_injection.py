"""Max SIC versus injected signal: every method, injection and seed of a compare config.

The grid is that of `configs/sic_vs_injection.yaml` (also runnable whole as
`resonance-search compare configs/sic_vs_injection.yaml`). Here every unit (method, injection,
seed) is an `analysis.compare.run_compare` of the config narrowed to it, run in a child process
of its own, so its wall time, CPU time and peak memory (the child's max RSS) are its own; the
density methods (CATHODE, LaCATHODE, ANODE, R-ANODE with equal density settings) of one
(injection, seed) run as one set in one child, sharing one sideband fit (each result is the one
it gets alone): each records its own cost and the set's shared one (sideband fit, data reading),
counted once in the grid's cost. A unit whose record exists is skipped, so a cut-off grid
resumes where it stopped. Units run method by method in the config's order (cheapest first),
then by injection and seed. The summary per (method, injection): median and 16-84% band over
seeds of max SIC (above the config's floor of test-background events), AUC and rejection at
eps_S = 0.2 / 0.5 (floored the same way; a rejection below the floor counts as larger than any
measured one), R-ANODE's learnt signal fraction, medians of time and the largest peak memory;
plus the SIC-versus-injection plot and the SIC curves of the first seed at 1000 injected, the
cost tables and the list of missing units (`--docs` writes the tables into a markdown page).
Missing units are listed, never filled in.

    python benchmarks/sic_vs_injection.py --data-dir ../shared/data/lhco
    python benchmarks/sic_vs_injection.py --methods supervised_hgb cwola_hgb --injections 1000
    python benchmarks/sic_vs_injection.py --config configs/sic_vs_injection_shifted.yaml

The robustness configs (issue 15) run the same grid: each config's units, JSON, tables and plots
are named after its file (`benchmarks/results/<config name>_units/`, `<config name>.json`), so
the sets of different configs never mix.
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
from typing import Any

from analysis.compare import compare_folder, run_compare
from analysis.config import ExecutorConfig, MethodConfig, SearchConfig, load_config
from analysis.executor import InProcessExecutor
from analysis.store import ResultStore, write_atomic, write_json
from analysis.units import method_labels, sideband_groups
from benchmarks.sic_vs_injection_summary import (
    code_markdown,
    cost_markdown,
    grid_cost,
    markdown,
    missing_markdown,
    plot,
    published_markdown,
    summarise,
)

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "sic_vs_injection.yaml"
RESULTS = REPO / "benchmarks" / "results"


def method_label(method: MethodConfig) -> str:
    """Short unique name of a configured method: the detector, and its classifier if it has one."""
    from anomaly import DETECTORS
    from anomaly.base import ClassifierDetector

    if not issubclass(DETECTORS[method.name], ClassifierDetector):
        return method.name
    return f"{method.name}_{method.options.get('classifier', 'hgb')}"


def with_data_dir(config: SearchConfig, data_dir: Path) -> SearchConfig:
    """The config reading its LHCO files from `data_dir` (absolute, so units agree wherever run)."""
    data_dir = data_dir.resolve()
    data = config.data.model_copy(
        update={
            "paths": [data_dir / Path(p).name for p in config.data.paths],
            "signal_path": data_dir / Path(config.data.signal_path).name,
        }
    )
    compare = config.compare.model_copy(update={"lhco_directory": data_dir})
    return config.model_copy(update={"data": data, "compare": compare})


def one_point(
    config: SearchConfig, methods: list[MethodConfig], injection: int, seed: int, output: Path
) -> SearchConfig:
    """The config's comparison narrowed to `methods` at one (injection, seed), in process."""
    compare = config.compare.model_copy(
        update={"methods": methods, "injections": [injection], "seeds": [seed]}
    )
    return config.model_copy(
        update={"compare": compare, "executor": ExecutorConfig(kind="inprocess"), "output": output}
    )


def narrowed(config: SearchConfig, labels: list[str], injection: int, seed: int, work: Path):
    """The config of one set of units (their methods in config order), in process, own folder."""
    methods = [m for m in config.compare.methods if method_label(m) in labels]
    output = work / "+".join(labels) / f"inj{injection}" / f"seed{seed}"
    return one_point(config, methods, injection, seed, output)


def unit_record_path(work: Path, label: str, injection: int, seed: int) -> Path:
    """Where a finished unit's record lives."""
    return work / label / f"inj{injection}" / f"seed{seed}" / "unit.json"


def run_units(
    config: SearchConfig, labels: list[str], injection: int, seed: int, work: Path
) -> None:
    """Run a set of units in this process and write each one's record, time and memory.

    A set is one method, or the density methods of one group sharing one sideband fit: each
    member records its own cost, and all of them the set's shared cost (sideband fit, data).
    """
    unit = narrowed(config, labels, injection, seed, work)
    labels = [method_label(m) for m in unit.compare.methods]
    load_start = os.getloadavg()
    code = git_commit()  # the code this process runs: a commit made while it runs is not it
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_compare(unit, executor=InProcessExecutor(progress=False))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    store = ResultStore(compare_folder(unit), unit.fingerprint("compare"))
    keys = method_labels(unit.compare.methods)
    runs = {r["method"]: r for r in result["runs"]}
    shared = None
    sideband = next((runs[k]["sideband"] for k in keys if "sideband" in runs[k]), None)
    if sideband is not None:
        fit = store.load_json(sideband)
        shared = {
            "group": next(g for g in _label_groups(config) if labels[0] in g),
            "methods": labels,
            "set_wall_seconds": wall,
            "set_cpu_seconds": cpu,
            "sideband_wall_seconds": fit["seconds"],
            "sideband_cpu_seconds": fit["cpu_seconds"],
            # what no method accounts for: the sideband fit, reading the data, the benchmark
            "shared_cpu_seconds": cpu - sum(runs[k].get("cpu_seconds", 0.0) for k in keys),
            "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    for label, key in zip(labels, keys, strict=True):
        run = runs[key]
        curve = None
        if "skipped" not in run:
            roc = store.load_arrays(f"compare/inj{injection}/seed{seed}/{key}_roc")
            curve = {"eps_s": roc["eps_s"].tolist(), "eps_b": roc["eps_b"].tolist()}
        own = shared is not None and "skipped" not in run
        record = {
            "method": label,
            "injection": injection,
            "seed": seed,
            **{k: v for k, v in run.items() if k not in ("method", "injection", "seed")},
            "unit_wall_seconds": run["seconds"] if own else wall,
            "unit_cpu_seconds": run["cpu_seconds"] if own else cpu,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "load_average_start": list(load_start),
            "load_average_end": list(os.getloadavg()),
            "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "code": code,
            "roc": curve,
        }
        if shared is not None:
            record["shared"] = shared
        write_json(unit_record_path(work, label, injection, seed), record)


def density_set_config(
    config: SearchConfig, label: str, injection: int, seed: int, work: Path
) -> SearchConfig:
    """The config of the set in which the density method `label` ran with its whole group."""
    group = next(g for g in _label_groups(config) if label in g)
    return narrowed(config, group, injection, seed, work)


def _label_groups(config: SearchConfig) -> list[list[str]]:
    """The methods' labels grouped as they share sideband fits (`units.sideband_groups`)."""
    labels = [method_label(m) for m in config.compare.methods]
    return [[labels[i] for i in group] for group in sideband_groups(config.compare.methods)]


def unit_sets(
    pending: list[tuple[str, int, int]], groups: list[list[str]]
) -> list[tuple[list[str], int, int]]:
    """The pending units as sets run together: a density group's units of one (injection, seed)
    join its first pending one; every other unit is a set of its own. Order kept."""
    group_of = {label: group for group in groups for label in group}
    left = set(pending)
    sets = []
    for label, injection, seed in pending:
        if (label, injection, seed) not in left:
            continue
        members = [m for m in group_of[label] if (m, injection, seed) in left]
        left -= {(m, injection, seed) for m in members}
        sets.append((members, injection, seed))
    return sets


STOP_AT_HELP = "UTC HH:MM (its next occurrence, so a night run may cross midnight) or ISO date-time"


def stop_time(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """The UTC instant of a --stop-at: the next HH:MM after `now`, or an ISO date-time as given."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        if ":" in text and len(text) <= 5:
            hour, minute = map(int, text.split(":"))
            stop = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        else:
            moment = dt.datetime.fromisoformat(text)
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    except ValueError as err:
        raise ValueError(f"--stop-at {text!r} is neither HH:MM nor an ISO date-time") from err
    return stop if stop > now else stop + dt.timedelta(days=1)


def git_commit(where: Path = REPO) -> dict[str, Any]:
    """The git commit of the checkout holding `where`, and whether its code had local changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(where), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    # Runs write the results and the docs: a summary written mid-queue is not a code change.
    tracked = git(
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":(exclude)benchmarks/results",
        ":(exclude)docs",
    )
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(tracked)}


def write_summary(config: SearchConfig, labels, units, work: Path, out: Path, args) -> None:
    """Gather every finished unit of the grid into the JSON and the plots."""
    code = git_commit()  # before the files this writes make the checkout differ from it
    records, missing = [], {}
    for label, injection, seed in units:
        path = unit_record_path(work, label, injection, seed)
        if path.exists():
            records.append(json.loads(path.read_text()))
        else:
            missing.setdefault(label, {}).setdefault(str(injection), []).append(seed)
    rows = summarise(records, labels, config)
    cost = grid_cost(records, units, _label_groups(config))
    tables = "\n".join(
        [
            markdown(rows, config.compare.min_background),
            published_markdown(
                rows, {method_label(m): m.name for m in config.compare.methods}, config
            ),
            "Cost per unit (median over the units measured; a density method's without the "
            "part its group shares, which is counted once per injection and seed) and of the "
            "whole grid extrapolated from it (`cost` in the JSON):",
            "",
            cost_markdown(cost),
            code_markdown(records),
            missing_markdown(missing),
        ]
    )
    write_atomic(out.with_suffix(".md"), tables)
    if args.docs:
        splice_tables(args.docs, tables, out)
    plots = plot(rows, records, out, config.compare.min_background) if records else []
    n_test_bkg = max((r.get("n_background", 0) for r in records), default=0)
    write_json(
        out,
        {
            "benchmark": "sic_vs_injection",
            "config": str(args.config),
            "data_dir": str(Path(args.data_dir).resolve()),
            "code": code,
            # units written before they recorded their own code: that of the work folder's checkout
            "units_code": [
                json.loads(c)
                for c in sorted({json.dumps(r.get("code") or git_commit(work)) for r in records})
            ],
            "signal_region": list(config.compare.signal_region),
            "features": list(config.data.features),
            "mass_shift": config.data.mass_shift,
            "min_background": config.compare.min_background,
            "floor": f"max SIC and rejections only where at least "
            f"{config.compare.min_background} of the {n_test_bkg} test-background events "
            "in the SR survive the cut",
            "methods": {
                method_label(m): {"name": m.name, "options": m.options}
                for m in config.compare.methods
            },
            "machine": {"cpu_count": os.cpu_count(), "load_average_now": list(os.getloadavg())},
            "n_units": len(units),
            "n_finished": len(records),
            "missing_seeds": missing,
            "cost": cost,
            "summary": rows,
            "units": [{k: v for k, v in r.items() if k != "roc"} for r in records],
            "plots": plots,
        },
    )


def docs_markers(out: Path) -> tuple[str, str]:
    """The markers around the generated tables of one output (JSON) in a markdown page."""
    return f"<!-- {out.stem} tables: begin -->", f"<!-- {out.stem} tables: end -->"


def splice_tables(path: Path, tables: str, out: Path) -> None:
    """Replace the generated tables of `out` between its markers in a markdown page."""
    begin, end = docs_markers(out)
    text = path.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{path} has no markers {begin} ... {end} for the tables of {out.name}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    write_atomic(path, f"{head}{begin}\n{tables}{end}{tail}")


def main(argv: list[str] | None = None) -> None:
    """Run the pending units of the grid (or one, with --unit) and write the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared/data/lhco")
    parser.add_argument("--work-dir", type=Path, help="default: results/<config name>_units")
    parser.add_argument("--output", type=Path, help="default: results/<config name>.json")
    parser.add_argument("--methods", nargs="+", help="method labels to run (default: all)")
    parser.add_argument("--injections", nargs="+", type=int)
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--stop-at", help=f"no unit is started after this time: {STOP_AT_HELP}")
    parser.add_argument("--summary-only", action="store_true", help="run nothing, summarise")
    parser.add_argument("--docs", type=Path, help="markdown page whose generated tables to redo")
    parser.add_argument(
        "--unit", nargs="+", metavar="INJECTION SEED LABEL", help="run one set of units"
    )
    args = parser.parse_args(argv)
    # Named after the config, so the units and results of different configs never mix.
    args.work_dir = args.work_dir or RESULTS / f"{args.config.stem}_units"
    args.output = args.output or RESULTS / f"{args.config.stem}.json"
    config = with_data_dir(load_config(args.config), args.data_dir)
    labels = [method_label(m) for m in config.compare.methods]
    if len(set(labels)) != len(labels):
        raise SystemExit(f"method labels must be unique, got {labels}")
    if args.unit:
        injection, seed, *members = args.unit
        run_units(config, members, int(injection), int(seed), args.work_dir)
        return
    for name, given, known in (
        ("methods", args.methods, labels),
        ("injections", args.injections, config.compare.injections),
        ("seeds", args.seeds, config.compare.seeds),
    ):
        unknown = sorted(set(given or []) - set(known))
        if unknown:
            raise SystemExit(f"--{name} {unknown} not in the config's {known}")
    units = [
        (label, injection, seed)
        for label in labels
        for injection in config.compare.injections
        for seed in config.compare.seeds
    ]
    chosen = [
        u
        for u in units
        if (not args.methods or u[0] in args.methods)
        and (not args.injections or u[1] in args.injections)
        and (not args.seeds or u[2] in args.seeds)
    ]
    stop = stop_time(args.stop_at) if args.stop_at else None
    pending = [u for u in chosen if not unit_record_path(args.work_dir, *u).exists()]
    print(f"{len(chosen) - len(pending)} of {len(chosen)} units done", file=sys.stderr)
    sets = unit_sets(pending, _label_groups(config))
    for i, (members, injection, seed) in enumerate([] if args.summary_only else sets):
        if stop is not None and dt.datetime.now(dt.UTC) >= stop:
            print(f"stop time {args.stop_at} UTC reached: {len(sets) - i} unit sets left")
            break
        names = " + ".join(members)
        print(f"[{i + 1}/{len(sets)}] {names} inj {injection} seed {seed}", file=sys.stderr)
        command = [sys.executable, __file__, "--unit", str(injection), str(seed), *members]
        command += ["--config", str(args.config), "--data-dir", str(args.data_dir)]
        subprocess.run([*command, "--work-dir", str(args.work_dir)], check=True)
        write_summary(config, labels, units, args.work_dir, args.output, args)
    write_summary(config, labels, units, args.work_dir, args.output, args)


if __name__ == "__main__":
    main()
