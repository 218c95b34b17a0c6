"""R-ANODE with one start against restarts chosen by validation loss, on grid points.

The mixture likelihood of R-ANODE has optima besides the signal: a signal flow that settles on
where the data exceed the interpolated background ranks the signal below the background (max SIC
1.00 and AUC 0.26 at 1500 injected, seed 2, of the method-comparison grid). `RANODE(n_restarts=k)`
trains k signal flows per fold on the same validation events and keeps the lowest validation
loss. At each (injection, seed) this runs, with the sideband fit the grid's density set made
(same config, seed and density settings; the fit itself when the set kept it, else made again),
R-ANODE with one start (whose test metrics must match the grid's unit record: that is checked
and written) and with `--restarts` starts, scores the labelled test set, and writes per point
the AUC, max SIC, learnt signal fractions, restart losses and cost to
`benchmarks/results/ranode_restarts.json` (and a markdown table, which `--docs` also writes
into a page between its markers). A point whose results exist is not rerun;
`--summary-only` rewrites the JSON and table from them.

    python benchmarks/ranode_restarts.py --data-dir ../shared/data/lhco --points 1500:2 250:1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

from analysis.compare import compare_folder, run_compare
from analysis.config import MethodConfig, SearchConfig, load_config
from analysis.executor import InProcessExecutor
from analysis.sideband_fits import sideband_fit_key
from analysis.store import ResultStore, write_atomic, write_json
from analysis.units import method_labels
from benchmarks.sic_vs_injection import (
    REPO,
    STOP_AT_HELP,
    density_set_config,
    git_commit,
    one_point,
    splice_tables,
    stop_time,
    unit_record_path,
    with_data_dir,
)

RESULTS = REPO / "benchmarks" / "results"
#: the record keys compared with the grid's unit record of R-ANODE with one start
_REPRODUCED = ("auc", "max_sic", "signal_fractions")


def point_config(config: SearchConfig, injection: int, seed: int, restarts: int, work: Path):
    """R-ANODE with one start and with `restarts`, alone, at one point of the config's grid.

    The grid's R-ANODE took the seed of its density set's first member, the first child of the
    point's unit seeds; listed first here, R-ANODE takes the same seed, and the sideband fit its
    first unit makes is the set's (equal density settings fit the same model).
    """
    grid = next(m for m in config.compare.methods if m.name == "ranode")
    options = {k: v for k, v in grid.options.items() if k != "n_restarts"}
    methods = [
        MethodConfig(name="ranode", options={**options, "n_restarts": n}) for n in (1, restarts)
    ]
    return one_point(config, methods, injection, seed, work / f"inj{injection}" / f"seed{seed}")


def run_point(
    config: SearchConfig, injection: int, seed: int, restarts: int, work: Path, grid_units: Path
) -> None:
    """Fit both variants at one point and write its record (last, so it marks the point done)."""
    point = point_config(config, injection, seed, restarts, work)
    kept = seed_with_kept_fit(config, point, injection, seed, grid_units)
    load_start = os.getloadavg()
    code = git_commit()
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_compare(point, executor=InProcessExecutor(progress=True))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    single, restarted = result["runs"]
    keep = ("auc", "max_sic", "rejection_at_eps_s_0p2", "rejection_at_eps_s_0p5")
    keep += ("signal_fractions", "restart_losses", "seconds", "cpu_seconds")
    record = {
        "injection": injection,
        "seed": seed,
        "single_start": {k: single[k] for k in keep},
        f"restarts_{restarts}": {k: restarted[k] for k in keep},
        "restarts": restarts,
        "reproduces_grid": _reproduces(grid_units, single, injection, seed),
        # the grid's kept fit spares the point its own sideband fit (and its cost)
        "sideband_fit_kept_by_grid": kept,
        "point_wall_seconds": wall,
        "point_cpu_seconds": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_average_start": list(load_start),
        "load_average_end": list(os.getloadavg()),
        "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code": code,
    }
    write_json(work / f"inj{injection}" / f"seed{seed}" / "point.json", record)


def seed_with_kept_fit(
    config: SearchConfig, point: SearchConfig, injection: int, seed: int, grid_units: Path
) -> bool:
    """Hand the point the sideband fit the grid's density set kept here; False if it kept none.

    It is the fit the point would make: same events, seed and density settings (the detector
    checks the events and the settings, `reproduces_grid` the results).
    """
    grid_set = density_set_config(config, "ranode", injection, seed, grid_units)
    source = ResultStore(compare_folder(grid_set), grid_set.fingerprint("compare"))
    key = sideband_fit_key(grid_set, injection, seed, "ranode")
    if not source.has(key):
        return False
    target = ResultStore(compare_folder(point), point.fingerprint("compare")).open()
    first = method_labels(point.compare.methods)[0]
    target.save_arrays(sideband_fit_key(point, injection, seed, first), **source.load_arrays(key))
    return True


def _reproduces(grid_units: Path, single: dict[str, Any], injection: int, seed: int):
    """Whether the one-start run gives the grid's R-ANODE record (None: no record to compare)."""
    path = unit_record_path(grid_units, "ranode", injection, seed)
    if not path.exists():
        return None
    grid = json.loads(path.read_text())
    return all(grid.get(k) == single.get(k) for k in _REPRODUCED)


def summarise(work: Path, out: Path, docs: Path | None = None) -> dict[str, Any]:
    """All finished points as JSON and a markdown table (also into `docs` between its markers)."""
    points = sorted(
        (json.loads(p.read_text()) for p in work.glob("inj*/seed*/point.json")),
        key=lambda r: (r["injection"], r["seed"]),
    )
    result = {
        "description": __doc__.split("\n\n")[0],
        "points": points,
        "generated_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    table = markdown(points)
    if docs is not None:
        splice_tables(docs, table, out)  # first: a page without markers stops before any write
    write_json(out, result)
    write_atomic(out.with_suffix(".md"), table)
    return result


def markdown(points: list[dict[str, Any]]) -> str:
    """One row per point: both variants' AUC, max SIC and learnt signal fractions."""
    lines = [
        "| injected | seed | one start: AUC | max SIC | w per fold | restarts | AUC | max SIC "
        "| w per fold | CPU [s] one / restarts | reproduces grid |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in points:
        a, b = p["single_start"], p[f"restarts_{p['restarts']}"]
        w = [" ".join(f"{x:.4f}" for x in r["signal_fractions"]) for r in (a, b)]
        lines.append(
            f"| {p['injection']} | {p['seed']} | {a['auc']:.3f} | {a['max_sic']:.2f} | {w[0]} "
            f"| {p['restarts']} | {b['auc']:.3f} | {b['max_sic']:.2f} | {w[1]} "
            f"| {a['cpu_seconds']:.0f} / {b['cpu_seconds']:.0f} | {p['reproduces_grid']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Run the requested points (skipping finished ones) and write the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs/sic_vs_injection.yaml")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared/data/lhco")
    parser.add_argument("--points", nargs="*", default=[], help="INJECTION:SEED of the grid")
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--work-dir", type=Path, default=RESULTS / "ranode_restarts_units")
    parser.add_argument("--out", type=Path, default=RESULTS / "ranode_restarts.json")
    parser.add_argument("--stop-at", help=f"no point is started after this time: {STOP_AT_HELP}")
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--docs", type=Path, help="markdown page whose generated table to redo")
    args = parser.parse_args(argv)
    if args.restarts < 2:
        parser.error("--restarts must be at least 2 (one start is always run beside it)")
    points = []
    for text in args.points:
        try:
            injection, seed = (int(v) for v in text.split(":"))
        except ValueError:
            parser.error(f"--points takes INJECTION:SEED, got {text!r}")
        points.append((injection, seed))
    config = with_data_dir(load_config(args.config), args.data_dir)
    stop = stop_time(args.stop_at) if args.stop_at else None
    for i, (injection, seed) in enumerate([] if args.summary_only else points):
        if (args.work_dir / f"inj{injection}" / f"seed{seed}" / "point.json").exists():
            continue
        if stop is not None and dt.datetime.now(dt.UTC) >= stop:
            print(f"stop time {args.stop_at} UTC reached: {len(points) - i} points left")
            break
        print(f"[{i + 1}/{len(points)}] injection {injection} seed {seed}", flush=True)
        grid_units = RESULTS / f"{args.config.stem}_units"
        run_point(config, injection, seed, args.restarts, args.work_dir, grid_units)
    summarise(args.work_dir, args.out, args.docs)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
