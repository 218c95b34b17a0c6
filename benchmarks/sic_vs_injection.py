"""Max SIC versus injected signal: every method, injection and seed of a compare config.

The grid is that of `configs/sic_vs_injection.yaml` (also runnable whole as
`resonance-search compare configs/sic_vs_injection.yaml`). Here every unit (method, injection,
seed) is one `analysis.compare.run_compare` of the config narrowed to that unit, run in a child
process of its own, so its wall time, CPU time and peak memory (the child's max RSS) are its own;
a unit whose record exists is skipped, so a cut-off grid resumes where it stopped. Units run
method by method in the config's order (cheapest first), then by injection and seed. The
summary per (method, injection): median and 16-84% band over seeds of max SIC (above the config's
floor of test-background events), AUC and rejection at eps_S = 0.2 / 0.5 (floored the same way;
a rejection below the floor counts as larger than any measured one), medians of time and the
largest peak memory; plus the SIC-versus-injection plot and the SIC curves of the first seed at
1000 injected. Missing units are listed, never filled in.

    python benchmarks/sic_vs_injection.py --data-dir ../shared/data/lhco
    python benchmarks/sic_vs_injection.py --methods supervised_hgb cwola_hgb --injections 1000
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

import numpy as np

from analysis.compare import compare_folder, run_compare
from analysis.config import ExecutorConfig, MethodConfig, SearchConfig, load_config
from analysis.executor import InProcessExecutor
from analysis.store import ResultStore, write_atomic, write_json

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "sic_vs_injection.yaml"
RESULTS = REPO / "benchmarks" / "results"
METRICS = ("max_sic", "auc", "rejection_at_eps_s_0p2", "rejection_at_eps_s_0p5")
#: stands for a rejection beyond the floor (infinite) in percentiles
_BEYOND = 1e300
#: injection whose SIC curves are drawn
CURVES_AT = 1000


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


def narrowed(config: SearchConfig, label: str, injection: int, seed: int, work: Path):
    """The config of one unit, in process, with its own results folder."""
    method = next(m for m in config.compare.methods if method_label(m) == label)
    compare = config.compare.model_copy(
        update={"methods": [method], "injections": [injection], "seeds": [seed]}
    )
    return config.model_copy(
        update={
            "compare": compare,
            "executor": ExecutorConfig(kind="inprocess"),
            "output": work / label / f"inj{injection}" / f"seed{seed}",
        }
    )


def unit_record_path(work: Path, label: str, injection: int, seed: int) -> Path:
    """Where a finished unit's record lives."""
    return work / label / f"inj{injection}" / f"seed{seed}" / "unit.json"


def run_unit(config: SearchConfig, label: str, injection: int, seed: int, work: Path) -> None:
    """Run one unit in this process and write its record with its own time and memory."""
    unit = narrowed(config, label, injection, seed, work)
    load_start = os.getloadavg()
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_compare(unit, executor=InProcessExecutor(progress=False))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    run = result["runs"][0]
    key = f"compare/inj{injection}/seed{seed}/{unit.compare.methods[0].name}"
    curve = None
    if "skipped" not in run:
        store = ResultStore(compare_folder(unit), unit.fingerprint("compare"))
        roc = store.load_arrays(f"{key}_roc")
        curve = {"eps_s": roc["eps_s"].tolist(), "eps_b": roc["eps_b"].tolist()}
    record = {
        "method": label,
        "injection": injection,
        "seed": seed,
        **{k: v for k, v in run.items() if k not in ("method", "injection", "seed")},
        "unit_wall_seconds": wall,
        "unit_cpu_seconds": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_average_start": list(load_start),
        "load_average_end": list(os.getloadavg()),
        "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code": _commit(),
        "roc": curve,
    }
    write_json(unit_record_path(work, label, injection, seed), record)


def _band(values: list[float]) -> dict[str, float | None]:
    """Median and 16-84% band; +inf (a rejection beyond the floor) stays as null."""
    if not values:
        return {"median": None, "low": None, "high": None}
    # inf as a huge finite stand-in: interpolating inf with inf gives NaN, not inf.
    finite = np.minimum(np.asarray(values, dtype=float), _BEYOND)
    q = np.percentile(finite, [50, 16, 84])
    names = ("median", "low", "high")
    return {k: (None if v >= _BEYOND else float(v)) for k, v in zip(names, q, strict=True)}


def summarise(records: list[dict[str, Any]], labels: list[str], config: SearchConfig):
    """One row per (method, injection) over the seeds that finished."""
    rows = []
    for label in labels:
        for injection in config.compare.injections:
            mine = [r for r in records if r["method"] == label and r["injection"] == injection]
            done = [r for r in mine if "skipped" not in r]
            row: dict[str, Any] = {
                "method": label,
                "injection": injection,
                "seeds": sorted(r["seed"] for r in done),
                "skipped": sorted({r["skipped"] for r in mine if "skipped" in r}),
            }
            for metric in METRICS:
                inf = metric.startswith("rejection")
                values = [np.inf if r[metric] is None and inf else r[metric] for r in done]
                row[metric] = _band([v for v in values if v is not None])
                if inf:
                    row[metric]["n_beyond_floor"] = sum(r[metric] is None for r in done)
            for key in ("seconds", "unit_wall_seconds", "unit_cpu_seconds"):
                row[f"median_{key}"] = _band([r[key] for r in mine if key in r])["median"]
            peaks = [r["peak_rss_mb"] for r in mine]
            row["max_peak_rss_mb"] = max(peaks) if peaks else None
            if mine:
                rows.append(row)
    return rows


def _seed(record: dict[str, Any]) -> int:
    return record["seed"]


def plot(rows: list[dict[str, Any]], records: list[dict[str, Any]], out: Path, floor: int):
    """SIC versus injection (median and band) and the SIC curves of the first seed at 1000."""
    import matplotlib.pyplot as plt

    from analysis.plots import plot_roc_sic

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for label in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == label and r["max_sic"]["median"] is not None]
        if not mine:
            continue
        x = np.array([r["injection"] for r in mine])
        med = np.array([r["max_sic"]["median"] for r in mine])
        lo = np.array([r["max_sic"]["low"] for r in mine])
        hi = np.array([r["max_sic"]["high"] for r in mine])
        (line,) = ax.plot(x, med, marker="o", label=label)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("injected signal events (1000: about 635 in the SR, S/B about 0.8%)")
    ax.set_ylabel(f"max SIC (at least {floor} test-background events)")
    ax.set_title("Max SIC versus injected signal: median and 16-84% band over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    sic_path = out.with_name(out.stem + "_sic.png")
    fig.savefig(sic_path, dpi=120)
    plt.close(fig)
    curves = {}
    at = sorted((r for r in records if r["injection"] == CURVES_AT and r.get("roc")), key=_seed)
    for r in at:
        curves.setdefault(r["method"], (np.array(r["roc"]["eps_s"]), np.array(r["roc"]["eps_b"])))
    curves_path = out.with_name(out.stem + f"_curves_inj{CURVES_AT}.png")
    if curves:
        plot_roc_sic(curves_path, dict(sorted(curves.items())), f"{CURVES_AT} injected, first seed")
    return [sic_path.name] + ([curves_path.name] if curves else [])


def grid_cost(records: list[dict[str, Any]], units: list[tuple[str, int, int]]) -> dict[str, Any]:
    """Per method the median unit cost measured, and the whole grid's extrapolated from it."""
    methods = {}
    for label in dict.fromkeys(u[0] for u in units):
        mine = [r for r in records if r["method"] == label and "skipped" not in r]
        n = sum(u[0] == label for u in units)
        cpu = _band([r["unit_cpu_seconds"] for r in mine])["median"]
        wall = _band([r["unit_wall_seconds"] for r in mine])["median"]
        methods[label] = {
            "n_units_measured": len(mine),
            "median_unit_cpu_seconds": cpu,
            "median_unit_wall_seconds": wall,
            "n_units_in_grid": n,
            "grid_cpu_hours": None if cpu is None else cpu * n / 3600,
        }
    known = [m["grid_cpu_hours"] for m in methods.values() if m["grid_cpu_hours"] is not None]
    complete = len(known) == len(methods)
    return {
        "methods": methods,
        "grid_cpu_hours": sum(known) if complete else None,
        "grid_hours_on_2_cores": sum(known) / 2 if complete else None,
        "note": "median CPU seconds of a method's measured units times its units in the grid "
        "(skipped units, e.g. supervised without signal, counted at full cost); 2 cores = "
        "two units at a time, each single-threaded",
    }


def markdown(rows: list[dict[str, Any]], floor: int) -> str:
    """The summary as a table: median [16%, 84%] over the seeds that finished."""

    def cell(band: dict[str, Any], spec: str) -> str:
        if band["median"] is None:
            return f"> floor ({band['n_beyond_floor']})" if band.get("n_beyond_floor") else "n/a"
        low, high = (
            format(band[k], spec) if band[k] is not None else "inf" for k in ("low", "high")
        )
        return f"{band['median']:{spec}} [{low}, {high}]"

    lines = [
        f"Median [16%, 84%] over seeds; max SIC and rejections where at least {floor} "
        "test-background events survive (beyond the floor: not measurable on this test set).",
        "",
        "| method | injected | seeds | max SIC | AUC | 1/eps_B at eps_S=0.2 | at 0.5 "
        "| unit wall [s] | unit CPU [s] | peak RSS [MB] |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if not r["seeds"]:
            lines.append(
                f"| {r['method']} | {r['injection']} | 0 | n/a ({'; '.join(r['skipped'])}) |"
            )
            continue
        cpu, wall = r["median_unit_cpu_seconds"], r["median_unit_wall_seconds"]
        lines.append(
            f"| {r['method']} | {r['injection']} | {len(r['seeds'])} | "
            f"{cell(r['max_sic'], '.2f')} | {cell(r['auc'], '.3f')} | "
            f"{cell(r['rejection_at_eps_s_0p2'], '.0f')} | "
            f"{cell(r['rejection_at_eps_s_0p5'], '.0f')} | "
            f"{wall:.0f} | {cpu:.0f} | {r['max_peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _commit(where: Path = REPO) -> dict[str, Any]:
    """The git commit of the checkout holding `where`, and whether it had local changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(where), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    tracked = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(tracked)}


def write_summary(config: SearchConfig, labels, units, work: Path, out: Path, args) -> None:
    """Gather every finished unit of the grid into the JSON and the plots."""
    records, missing = [], {}
    for label, injection, seed in units:
        path = unit_record_path(work, label, injection, seed)
        if path.exists():
            records.append(json.loads(path.read_text()))
        else:
            missing.setdefault(label, {}).setdefault(str(injection), []).append(seed)
    rows = summarise(records, labels, config)
    write_atomic(out.with_suffix(".md"), markdown(rows, config.compare.min_background))
    plots = plot(rows, records, out, config.compare.min_background) if records else []
    n_test_bkg = max((r.get("n_background", 0) for r in records), default=0)
    write_json(
        out,
        {
            "benchmark": "sic_vs_injection",
            "config": str(args.config),
            "data_dir": str(Path(args.data_dir).resolve()),
            "code": _commit(),
            # units written before they recorded their own code: that of the work folder's checkout
            "units_code": [
                json.loads(c)
                for c in sorted({json.dumps(r.get("code") or _commit(work)) for r in records})
            ],
            "signal_region": list(config.compare.signal_region),
            "features": list(config.data.features),
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
            "cost": grid_cost(records, units),
            "summary": rows,
            "units": [{k: v for k, v in r.items() if k != "roc"} for r in records],
            "plots": plots,
        },
    )


def main(argv: list[str] | None = None) -> None:
    """Run the pending units of the grid (or one, with --unit) and write the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared/data/lhco")
    parser.add_argument("--work-dir", type=Path, default=RESULTS / "sic_vs_injection_units")
    parser.add_argument("--output", type=Path, default=RESULTS / "sic_vs_injection.json")
    parser.add_argument("--methods", nargs="+", help="method labels to run (default: all)")
    parser.add_argument("--injections", nargs="+", type=int)
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--stop-at", help="UTC time HH:MM after which no unit is started")
    parser.add_argument("--summary-only", action="store_true", help="run nothing, summarise")
    parser.add_argument("--unit", nargs=3, metavar=("LABEL", "INJECTION", "SEED"))
    args = parser.parse_args(argv)
    config = with_data_dir(load_config(args.config), args.data_dir)
    labels = [method_label(m) for m in config.compare.methods]
    if len(set(labels)) != len(labels):
        raise SystemExit(f"method labels must be unique, got {labels}")
    if args.unit:
        label, injection, seed = args.unit
        run_unit(config, label, int(injection), int(seed), args.work_dir)
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
    stop = None
    if args.stop_at:
        hour, minute = map(int, args.stop_at.split(":"))
        now = dt.datetime.now(dt.UTC)
        stop = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    pending = [u for u in chosen if not unit_record_path(args.work_dir, *u).exists()]
    print(f"{len(chosen) - len(pending)} of {len(chosen)} units done", file=sys.stderr)
    for i, (label, injection, seed) in enumerate([] if args.summary_only else pending):
        if stop is not None and dt.datetime.now(dt.UTC) >= stop:
            print(f"stop time {args.stop_at} UTC reached: {len(pending) - i} units left")
            break
        print(f"[{i + 1}/{len(pending)}] {label} inj {injection} seed {seed}", file=sys.stderr)
        command = [sys.executable, __file__, "--unit", label, str(injection), str(seed)]
        command += ["--config", str(args.config), "--data-dir", str(args.data_dir)]
        subprocess.run([*command, "--work-dir", str(args.work_dir)], check=True)
        write_summary(config, labels, units, args.work_dir, args.output, args)
    write_summary(config, labels, units, args.work_dir, args.output, args)


if __name__ == "__main__":
    main()
