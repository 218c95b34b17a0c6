"""Benchmark of the conditional density models on the same task: p(x | mjj) in the sidebands.

Task: the four standard LHCO features x = (mj1, delta_mj, tau21_j1, tau21_j2) (TeV, jets ordered
by mass) conditioned on mjj, fitted on sideband events (mjj outside the 3.3-3.7 TeV signal region)
of the QCD background in ../shared/data/lhco (parts 01-08 for training, 09-10 held out); with
`--data toy` (or when that folder is absent) the built-in toy generator stands in.

For every model: fit time, sampling time per 100k events, and the AUC of a gradient-boosted
classifier (scikit-learn HistGradientBoosting) separating held-out real events from generated
events at the same mjj (0.5 is perfect; 50/50 train/test split of both). A real-vs-real row
gives the AUC of two independent real samples, the floor set by the classifier's own noise.
Sampling is timed on the held-out contexts (one event each, batches of 100k) and scaled to 100k.
Writes benchmarks/results/generative_compare.json and a PNG of the marginals.

The defaults (50k training and 50k held-out events, at most 30 epochs, each model's default
configuration, one torch thread) took 9 minutes on a shared 2-core CPU (load 3-6); go bigger, e.g.
python benchmarks/generative_compare.py --events 400000 --test-events 100000 --epochs 100
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from analysis.data.features import MJJ, build_features
from analysis.data.readers import read_lhco
from analysis.data.toy import make_toy
from generative import make_model
from generative.fileio import atomic_path, write_atomic

REPO = Path(__file__).resolve().parents[1]
LHCO = REPO.parent / "shared" / "data" / "lhco"
RESULTS = REPO / "benchmarks" / "results"
FEATURES = ("mj1", "delta_mj", "tau21_j1", "tau21_j2")
SIGNAL_REGION = (3.3, 3.7)
TRAIN_PARTS = tuple(f"qcd_part{i:02d}.h5" for i in range(1, 9))
TEST_PARTS = ("qcd_part09.h5", "qcd_part10.h5")
MODELS = ("maf", "flow_matching", "diffusion", "gan", "vae")


@dataclass
class Task:
    """Training and held-out sideband events: features x and context mjj (TeV)."""

    x_train: np.ndarray
    c_train: np.ndarray
    x_test: np.ndarray
    c_test: np.ndarray
    source: str


def _sidebands(raw: Any) -> tuple[np.ndarray, np.ndarray]:
    table = build_features(raw, FEATURES)
    table = table[(table[MJJ] < SIGNAL_REGION[0]) | (table[MJJ] > SIGNAL_REGION[1])]
    return table[list(FEATURES)].to_numpy(), table[[MJJ]].to_numpy()


def _read_parts(parts: tuple[str, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
    xs, cs, have = [], [], 0
    for part in parts:
        if have >= n:
            break
        x, c = _sidebands(read_lhco(LHCO / part))
        xs.append(x)
        cs.append(c)
        have += len(x)
    if have < n:
        raise SystemExit(f"only {have} sideband events in {', '.join(parts)}; asked for {n}")
    return np.concatenate(xs)[:n], np.concatenate(cs)[:n]


def load_task(source: str, n_train: int, n_test: int, seed: int) -> Task:
    """Sideband events from the LHCO background files or the toy generator."""
    if source == "lhco":
        if not LHCO.is_dir():
            raise SystemExit(f"{LHCO} not found: pass --data toy to use the built-in toy")
        return Task(*_read_parts(TRAIN_PARTS, n_train), *_read_parts(TEST_PARTS, n_test), source)
    # The signal region holds about 14% of the toy: draw enough for both samples.
    raw = make_toy(int(1.3 * (n_train + n_test)) + 1000, random_state=seed)
    x, c = _sidebands(raw)
    if len(x) < n_train + n_test:
        raise SystemExit(f"toy gave {len(x)} sideband events, need {n_train + n_test}")
    test = slice(n_train, n_train + n_test)
    return Task(x[:n_train], c[:n_train], x[test], c[test], source)


def classifier_auc(real: np.ndarray, other: np.ndarray, seed: int) -> float:
    """Test AUC of a classifier telling `real` from `other` rows (half of each to train)."""
    rng = np.random.default_rng(seed)
    x = np.vstack([real, other])
    y = np.r_[np.zeros(len(real)), np.ones(len(other))]
    train = rng.permutation(len(x)) < len(x) // 2
    clf = HistGradientBoostingClassifier(max_iter=200, early_stopping=True, random_state=seed)
    clf.fit(x[train], y[train])
    return float(roc_auc_score(y[~train], clf.predict_proba(x[~train])[:, 1]))


def benchmark_model(name: str, task: Task, epochs: int, seed: int) -> tuple[dict, np.ndarray]:
    """Fit one model, time its sampling, score its samples; returns (record, samples)."""
    model = make_model(
        name, training={"epochs": epochs}, random_state=seed, verbose=sys.stderr.isatty()
    )
    start = time.perf_counter()
    model.fit(task.x_train, task.c_train)
    fit_seconds = time.perf_counter() - start

    # One generated event per held-out event, at its mjj: timed, then scored.
    start = time.perf_counter()
    samples = model.sample(task.c_test, random_state=seed + 1)
    sample_seconds = time.perf_counter() - start
    bad = ~np.isfinite(samples).all(axis=1)
    auc = classifier_auc(
        np.hstack([task.x_test, task.c_test]),
        np.hstack([samples, task.c_test])[~bad],
        seed,
    )
    history = model.history_
    record = {
        "model": name,
        "parameters": sum(p.numel() for p in model.module_.parameters()),
        "fit_seconds": round(fit_seconds, 1),
        "epochs_run": history.epochs_run,
        "best_epoch": history.best_epoch,
        # JSON has no NaN: a validation loss that never became finite is reported as null.
        "best_val_loss": (
            round(history.best_val_loss, 4) if math.isfinite(history.best_val_loss) else None
        ),
        "sample_seconds_per_100k": round(sample_seconds * 100_000 / len(task.c_test), 2),
        "non_finite_samples": int(bad.sum()),
        "auc_generated_vs_real": round(auc, 4),
    }
    return record, samples


def plot_marginals(task: Task, samples: dict[str, np.ndarray], path: Path) -> None:
    """Histograms of each feature: held-out real events against every model's samples."""
    fig, axes = plt.subplots(1, len(FEATURES), figsize=(4 * len(FEATURES), 3.6))
    for i, (ax, feature) in enumerate(zip(axes, FEATURES, strict=True)):
        bins = np.linspace(*np.quantile(task.x_test[:, i], [0.001, 0.999]), 60)
        ax.hist(task.x_test[:, i], bins, density=True, color="0.8", label="real (held out)")
        for name, values in samples.items():
            ax.hist(values[:, i], bins, density=True, histtype="step", label=name)
        ax.set_xlabel(feature + (" [TeV]" if feature.startswith(("mj", "delta")) else ""))
    axes[0].legend(fontsize="small")
    fig.suptitle(f"p(x | mjj) in the sidebands ({task.source}, {len(task.x_train)} events)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Run the comparison from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="training sideband events")
    parser.add_argument("--test-events", type=int, default=50_000, help="held-out events")
    parser.add_argument("--epochs", type=int, default=30, help="maximum epochs per model")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names")
    parser.add_argument("--data", choices=("auto", "lhco", "toy"), default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS / "generative_compare.json")
    args = parser.parse_args(argv)
    # The machine may be shared: the load averages qualify every timing below.
    started, load_at_start = time.perf_counter(), os.getloadavg()
    if args.threads:
        torch.set_num_threads(args.threads)
    source = args.data if args.data != "auto" else ("lhco" if LHCO.is_dir() else "toy")
    task = load_task(source, args.events, args.test_events, args.seed)

    real = np.hstack([task.x_test, task.c_test])
    other_real = np.hstack([task.x_train, task.c_train])[: len(real)]
    floor = classifier_auc(real, other_real, args.seed)
    records: list[dict] = [
        {"model": "real (independent)", "auc_generated_vs_real": round(floor, 4)}
    ]
    samples = {}
    for name in args.models.split(","):
        record, samples[name] = benchmark_model(name, task, args.epochs, args.seed)
        records.append(record)
        print(json.dumps(record), flush=True)

    result = {
        "task": {
            "data": source,
            "features": list(FEATURES),
            "context": MJJ,
            "signal_region_tev": list(SIGNAL_REGION),
            "train_events": len(task.x_train),
            "test_events": len(task.x_test),
            "max_epochs": args.epochs,
            "seed": args.seed,
        },
        "machine": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(v, 2) for v in load_at_start],
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
            "total_seconds": round(time.perf_counter() - started, 1),
        },
        "results": records,
    }
    write_atomic(args.output, json.dumps(result, indent=2) + "\n")
    plot_marginals(task, samples, args.output.with_suffix(".png"))
    print(f"wrote {args.output} and {args.output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
