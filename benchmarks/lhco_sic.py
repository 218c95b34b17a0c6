"""Max SIC, AUC and rejection of every anomaly detector on the LHCO-layout benchmark data.

The standard split (analysis.data.lhco_benchmark_split): parts 01-06 are the data with
`--n-inject` signal events injected, parts 07-08 the extra background of the idealized
detector, parts 09-10 plus the signal not injected the test set. The window is the whole
spectrum: signal region (SR) 3.3-3.7 TeV, sidebands the rest (or `--sb-width` TeV either side).
Features: mj1, delta_mj, tau21_j1, tau21_j2 (TeV). The supervised reference trains on the
extra background in the SR plus half of the test signal in the SR (seeded); every method is
evaluated on the same events: the test background in the SR and the other half of the test
signal. Each method runs in a forked child process, so its wall time and peak memory (the
child's VmHWM) are its own.

    python benchmarks/lhco_sic.py --seeds 0 1 2 --n-inject 1000 --classifier hgb
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from analysis.data import DEFAULT_FEATURES, build_features, lhco_benchmark_split
from analysis.metrics import compute_metrics, sic_curve
from anomaly import FAST_MAF, make_detector
from generative import MAF, TrainingConfig
from generative.fileio import atomic_path, write_atomic

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "lhco"
RESULTS = REPO / "benchmarks" / "results"
METHODS = ("supervised", "idealized", "cathode", "cwola", "anode", "autoencoder")
#: the CATHODE paper's flow and its training, for the speed comparison
PAPER_MAF = {"transform": "affine", "n_transforms": 15, "hidden_features": 128}
PAPER_BATCH, PAPER_EPOCHS = 256, 100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=DATA)
    p.add_argument("--n-inject", type=int, default=1000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--classifier", choices=("hgb", "mlp"), default="hgb")
    p.add_argument("--sr", type=float, nargs=2, default=(3.3, 3.7), metavar=("LOW", "HIGH"))
    p.add_argument("--sb-width", type=float, default=None, help="sideband width (TeV)")
    p.add_argument("--n-folds", type=int, default=5)
    p.add_argument("--hgb-models", type=int, default=None, help="HGB seeds per fold")
    p.add_argument("--flow-epochs", type=int, default=None, help="override the flow epochs")
    p.add_argument("--flow-transform", choices=("affine", "spline"), default=None)
    p.add_argument("--min-background", type=int, default=50)
    # One thread by default: a fork of a process whose torch thread pool has started can hang
    # (seen here with 2 threads after the paper probe), and one thread is faster under load.
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fraction", type=float, default=1.0, help="use this fraction of events")
    p.add_argument("--paper-probe-batches", type=int, default=0, help="time the paper's flow")
    p.add_argument("--output", type=Path, default=RESULTS / "lhco_sic.json")
    return p.parse_args(argv)


def subsample(table, fraction: float, seed: int):
    """A seeded random fraction of a table's rows (all when fraction is 1)."""
    return table if fraction >= 1 else table.sample(frac=fraction, random_state=seed)


def load(args: argparse.Namespace, seed: int, mass_shift: float = 0.0) -> dict[str, Any]:
    """Window, references and evaluation set of one seed (features in TeV, jet masses shifted
    by `mass_shift` x mjj as in `build_features`)."""
    split = lhco_benchmark_split(
        args.data_dir, n_inject=args.n_inject, region=tuple(args.sr), random_state=seed
    )
    names = list(DEFAULT_FEATURES)
    data, test, extra = (
        build_features(subsample(t, args.fraction, seed), names, mass_shift=mass_shift)
        for t in (split.data, split.test, split.extra_background)
    )
    lo, hi = args.sr

    def in_sr(t):
        return ((t["mjj"] > lo) & (t["mjj"] < hi)).to_numpy()

    if args.sb_width is not None:
        data = data[(data["mjj"] > lo - args.sb_width) & (data["mjj"] < hi + args.sb_width)]
    test_sr, extra_sr = test[in_sr(test)], extra[in_sr(extra)]
    signal = np.flatnonzero(test_sr["label"].to_numpy() == 1)
    rng = np.random.default_rng(seed)
    for_supervised = rng.choice(signal, len(signal) // 2, replace=False)
    evaluation = test_sr.drop(test_sr.index[for_supervised])
    supervised = [extra_sr[names], test_sr.iloc[for_supervised][names]]
    X_sup = np.concatenate([t.to_numpy() for t in supervised])
    return {
        "X": data[names].to_numpy(),
        "mjj": data["mjj"].to_numpy(),
        "in_sr": in_sr(data),
        "labels": data["label"].to_numpy(),
        "background": extra_sr[names].to_numpy(),
        "X_supervised": X_sup,
        "y_supervised": np.repeat([0, 1], [len(extra_sr), len(for_supervised)]),
        "X_eval": evaluation[names].to_numpy(),
        "mjj_eval": evaluation["mjj"].to_numpy(),
        "y_eval": evaluation["label"].to_numpy(),
        "injection": split.injection.summary(),
    }


def detector_params(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Constructor arguments of one method under the command-line settings."""
    params: dict[str, Any] = {"n_folds": args.n_folds}
    if name in ("supervised", "idealized", "cathode", "cwola"):
        params["classifier"] = args.classifier
        if args.classifier == "hgb" and args.hgb_models is not None:
            params["classifier_params"] = {"n_models": args.hgb_models}
    if name in ("cathode", "anode") and (args.flow_epochs or args.flow_transform):
        flow = {**FAST_MAF, "transform": args.flow_transform or FAST_MAF["transform"]}
        if args.flow_epochs:
            flow["training"] = {**FAST_MAF["training"], "epochs": args.flow_epochs}
        params["density_params"] = flow
    if name == "cwola" and args.sb_width is not None:
        params["sideband_width"] = args.sb_width
    return params


def run_method(name: str, args: argparse.Namespace, d: dict[str, Any], seed: int) -> dict:
    """Fit one detector on the window and score the evaluation set (in the child process)."""
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    with threadpool_limits(args.threads):
        det = make_detector(name, random_state=seed, **detector_params(name, args))
        if name == "supervised":
            n = len(d["X_supervised"])
            det.fit(d["X_supervised"], np.full(n, 3.5), np.ones(n, bool), labels=d["y_supervised"])
        else:
            extra = {"background": d["background"]} if name == "idealized" else {}
            det.fit(d["X"], d["mjj"], d["in_sr"], **extra)
        fitted = time.perf_counter()
        scores = det.score_samples(d["X_eval"], d["mjj_eval"])
    info: dict[str, Any] = {
        "fit_seconds": fitted - start,
        "score_seconds": time.perf_counter() - fitted,
    }
    model = getattr(det, "density_model_", None) or getattr(det, "sideband_model_", None)
    if model is not None:
        info["flow_seconds"] = model.history_.seconds
        info["flow_epochs"] = model.history_.epochs_run
        info["flow_best_val_loss"] = model.history_.best_val_loss
    if name == "cathode":
        info["n_template"] = len(det.reference_)
        info["n_invalid_template"] = det.n_invalid_template_
    info["peak_rss_mb"] = _status_mb("VmHWM")
    return {"scores": scores, "info": info}


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(conn, name, args, d, seed) -> None:
    try:
        conn.send(run_method(name, args, d, seed))
    # Any failure is reported to the parent, which records it and goes on with other methods.
    except Exception as err:
        conn.send({"error": f"{type(err).__name__}: {err}"})
    conn.close()


def in_child(name: str, args: argparse.Namespace, d: dict[str, Any], seed: int) -> dict:
    """Run one method in a forked process; its wall time and peak memory are its own."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = ctx.Process(target=_child, args=(child, name, args, d, seed))
    proc.start()
    result = parent.recv()
    proc.join()
    info = result.setdefault("info", {})
    info["wall_seconds"] = time.perf_counter() - start
    info["load_average_at_start"] = load
    return result


def paper_flow_probe(args: argparse.Namespace, d: dict[str, Any], n_batches: int) -> dict:
    """Time `n_batches` of the paper's flow at batch 256 and extrapolate its 100 epochs."""
    torch.set_num_threads(args.threads)
    sb = ~d["in_sr"]
    n = n_batches * PAPER_BATCH
    config = TrainingConfig(epochs=1, batch_size=PAPER_BATCH, validation_fraction=0.01)
    model = MAF(**PAPER_MAF, training=config, random_state=0, verbose=False)
    start = time.perf_counter()
    model.fit(d["X"][sb][:n], d["mjj"][sb][:n, None])
    per_batch = (time.perf_counter() - start) / n_batches
    batches_per_epoch = int(0.8 * sb.sum()) // PAPER_BATCH
    return {
        "seconds_per_batch": per_batch,
        "estimated_epoch_seconds": per_batch * batches_per_epoch,
        "estimated_training_hours": per_batch * batches_per_epoch * PAPER_EPOCHS / 3600,
    }


def plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, floor_note: str) -> None:
    """SIC curves of the first seed, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, (eps_s, sic) in curves.items():
        ax.plot(eps_s, sic, label=name)
    grid = np.linspace(1e-3, 1, 200)
    ax.plot(grid, np.sqrt(grid), "k:", label="random")
    ax.set(xlabel=r"signal efficiency $\epsilon_S$", ylabel=r"SIC = $\epsilon_S/\sqrt{\epsilon_B}$")
    ax.set_title(f"LHCO-layout benchmark ({floor_note})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def write_json(payload: dict, path: Path) -> None:
    """Write JSON atomically."""
    write_atomic(path, json.dumps(payload, indent=2))


def ready(data_dir: Path) -> bool:
    """Whether the LHCO data are there (said on stderr when not); torch then runs on one thread."""
    if not data_dir.is_dir():
        print(f"LHCO benchmark data not found at {data_dir}; skipping.", file=sys.stderr)
        return False
    torch.set_num_threads(1)
    return True


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """A benchmark's command-line settings as JSON values (paths as text)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def machine() -> dict[str, Any]:
    """The machine's core count and load average, recorded beside a benchmark's numbers."""
    return {"cpu_count": os.cpu_count(), "load_average": os.getloadavg()}


def write_benchmark(path: Path, benchmark: str, settings: dict, **sections: Any) -> None:
    """Write a benchmark's JSON atomically: its name, settings, the machine, then `sections`."""
    write_json(
        {"benchmark": benchmark, "settings": settings, "machine": machine(), **sections}, path
    )


def summarise(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Median (and spread) over seeds of each method's metrics and costs."""
    out: dict[str, dict[str, float]] = {}
    for name in {r["method"] for r in runs}:
        ok = [r for r in runs if r["method"] == name and "metrics" in r]
        if not ok:
            continue
        keys = ("max_sic", "auc", "rejection_at_eps_s_0p2", "rejection_at_eps_s_0p5")
        out[name] = {
            f"median_{k}": float(np.median([r["metrics"][k] or np.inf for r in ok])) for k in keys
        }
        out[name]["max_sic_min"] = min(r["metrics"]["max_sic"] for r in ok)
        out[name]["max_sic_max"] = max(r["metrics"]["max_sic"] for r in ok)
        out[name]["median_wall_seconds"] = float(np.median([r["wall_seconds"] for r in ok]))
        out[name]["n_seeds"] = len(ok)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write JSON results and the SIC plot."""
    args = parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"LHCO benchmark data not found at {args.data_dir}; skipping.", file=sys.stderr)
        return 0
    runs, curves, probe = [], {}, None
    for seed in args.seeds:
        t0 = time.perf_counter()
        d = load(args, seed)
        print(f"seed {seed}: data loaded in {time.perf_counter() - t0:.1f}s; {d['injection']}")
        if args.paper_probe_batches and probe is None:
            probe = paper_flow_probe(args, d, args.paper_probe_batches)
            print(f"paper flow probe: {probe}")
        for name in args.methods:
            result = in_child(name, args, d, seed)
            record = {"method": name, "seed": seed, **result["info"]}
            if "error" in result:
                record["error"] = result["error"]
                print(f"  {name}: FAILED {result['error']}")
            else:
                m = compute_metrics(
                    d["y_eval"], result["scores"], min_background=args.min_background
                )
                record["metrics"] = m.to_dict()
                print(
                    f"  {name:12s} max SIC {m.max_sic:6.2f}  AUC {m.auc:.3f}  "
                    f"R(0.2) {m.rejection_at_eps_s_0p2:8.1f}  "
                    f"R(0.5) {m.rejection_at_eps_s_0p5:7.1f}"
                    f"  {record['wall_seconds']:7.1f}s  {record['peak_rss_mb']:7.0f} MB",
                    flush=True,
                )
                if seed == args.seeds[0]:
                    sic = sic_curve(d["y_eval"], result["scores"])
                    keep = sic.n_background_selected >= args.min_background
                    idx = np.unique(np.geomspace(1, keep.sum(), 300).astype(int) - 1)
                    curves[name] = (sic.eps_s[keep][idx], sic.sic[keep][idx])
            runs.append(record)
            write_json(payload(args, runs, probe), args.output)
    if curves:
        plot(curves, args.output.with_suffix(".png"), f"max SIC floor: {args.min_background} bkg")
    write_json(payload(args, runs, probe), args.output)
    print(f"wrote {args.output}")
    return 0


def payload(args: argparse.Namespace, runs: list[dict], probe: dict | None) -> dict:
    """The JSON document: settings, per-run records, medians over seeds."""
    return {
        "benchmark": "lhco_sic",
        "settings": settings_of(args),
        "features": list(DEFAULT_FEATURES),
        "min_background": args.min_background,
        "machine": machine(),
        "paper_flow_probe": probe,
        "runs": runs,
        "summary": summarise(runs),
    }


if __name__ == "__main__":
    sys.exit(main())
