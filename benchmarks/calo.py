"""Benchmark of the calorimeter shower surrogate on the photon showers of ../shared/data/calo.

Data: `photons_train.h5` (60k showers, CaloChallenge dataset-1 format and geometry) for training,
`photons_eval.h5` (30k independent showers) as the reference. For every shower model
('caloflow', 'flow_matching'): training time on a seeded subsample of the training file,
generation time per shower on the CPU at batch sizes 1, 100 and 10,000 (one thread; batch 1 is
the median of a few calls after a warm-up), and the CaloChallenge metrics of `--n-generate`
generated showers against as many reference showers at the same incident energies: low- and
high-level classifier AUCs (the package's default 2 x 256 classifier with whitened inputs, not
the challenge's 3 x 2048 one), separation powers of the high-level features, FPD and KPD.
A "reference" row evaluates real training showers against the same reference: the values a
perfect generator would get with these sample sizes (the classifier's and the distances' floor).

Anchors (DESIGN.md, CaloChallenge 2022, arXiv:2410.21611, dataset 1 photons on Geant4): best
low-level AUC 0.626 (CaloINN), best high-level AUC 0.536 (CaloDiffusion), FPD x1e3 0.44
(CaloScore); CPU generation at batch 10k: CaloINN 2.9 ms, CaloFlow student 6.1 ms per shower.
Those models trained far longer on the challenge's full training set; the defaults here fit
the ~15 minutes a benchmark may take on a 2-core machine (30k showers, tens of epochs, a smaller
flow 2, 10k showers per evaluation, so FPD carries the finite-sample bias the reference row
shows), and the data are a GFlash-style parametrised simulation, not Geant4 (see the data
README), so the comparison is indicative: the JSON states the anchors beside the measured
values and whether each is met.

Writes benchmarks/results/calo.json and plots in benchmarks/results/calo/<model>/.

Example (bigger): python benchmarks/calo.py --train-events 60000 --epochs 40 --fm-epochs 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generative.calo.evaluation import ShowerEvaluation, evaluate_showers, write_evaluation_plots
from generative.calo.geometry import load_binning
from generative.calo.io import ShowerData, read_showers
from generative.calo.models import ShowerModel, make_shower_model
from generative.fileio import write_atomic

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "calo"
RESULTS = REPO / "benchmarks" / "results"
ANCHORS = {
    "source": "CaloChallenge 2022 (arXiv:2410.21611), dataset 1 photons, Geant4 showers",
    "best_low_level_auc": {"value": 0.626, "model": "CaloINN"},
    "best_high_level_auc": {"value": 0.536, "model": "CaloDiffusion"},
    "best_fpd_x1e3": {"value": 0.44, "model": "CaloScore"},
    "cpu_ms_per_shower_batch_10k": {"CaloINN": 2.9, "CaloFlow student": 6.1},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (the defaults keep a run near 15 minutes on 2 cores)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the photon files")
    parser.add_argument("--models", nargs="+", default=["caloflow", "flow_matching"])
    parser.add_argument("--train-events", type=int, default=30_000)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of CaloFlow's flow 2")
    parser.add_argument(
        "--energy-epochs", type=int, default=10, help="epochs of CaloFlow's flow 1 (cheap)"
    )
    parser.add_argument("--shape-hidden", type=int, default=128, help="width of flow 2's MADEs")
    parser.add_argument("--shape-transforms", type=int, default=3)
    parser.add_argument("--fm-epochs", type=int, default=35, help="epochs of flow matching")
    parser.add_argument("--fm-steps", type=int, default=30, help="midpoint steps when sampling")
    parser.add_argument("--batch-size", type=int, default=512, help="training batch size")
    parser.add_argument("--n-generate", type=int, default=10_000)
    parser.add_argument("--batch1-repeats", type=int, default=5)
    parser.add_argument("--no-classifier", action="store_true", help="skip the classifier tests")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def model_params(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Constructor arguments of one shower model for this run."""
    training = {
        "batch_size": args.batch_size,
        "learning_rate": 1e-3,
        "validation_fraction": 0.1,
        "patience": 5,
    }
    common = {"random_state": args.seed, "verbose": sys.stderr.isatty()}
    if name == "caloflow":
        return {
            **common,
            "training": {**training, "epochs": args.epochs},
            "energy_flow": {"training": {"epochs": args.energy_epochs, "patience": 10}},
            "shape_flow": {
                "hidden_features": args.shape_hidden,
                "n_transforms": args.shape_transforms,
            },
        }
    if name == "flow_matching":
        return {
            **common,
            "training": {**training, "epochs": args.fm_epochs},
            "flow": {"steps": args.fm_steps},
        }
    raise ValueError(f"no benchmark settings for model {name!r}")


def generation_times(
    model: ShowerModel, energies: np.ndarray, repeats: int, seed: int
) -> tuple[dict[str, float], np.ndarray]:
    """Milliseconds per shower at batch 1, 100 and 10,000 (or all of `energies` if fewer)."""
    model.sample(energies[:1], batch_size=1, random_state=seed)  # warm-up
    single = []
    for i in range(repeats):
        start = time.perf_counter()
        model.sample(energies[i : i + 1], batch_size=1, random_state=seed + i)
        single.append(time.perf_counter() - start)
    start = time.perf_counter()
    model.sample(energies[:100], batch_size=100, random_state=seed)
    t100 = (time.perf_counter() - start) / min(100, len(energies))
    big = min(10_000, len(energies))
    start = time.perf_counter()
    showers = model.sample(energies, batch_size=big, random_state=seed)
    t_big = (time.perf_counter() - start) / len(energies)
    times = {
        "batch_1": 1e3 * statistics.median(single),
        "batch_100": 1e3 * t100,
        f"batch_{big}": 1e3 * t_big,
    }
    return times, showers


def _shown(path: Path) -> str:
    """A path relative to the repository when it lies inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def summarise(evaluation: ShowerEvaluation) -> dict[str, Any]:
    """The headline numbers of an evaluation, beside the anchors."""
    low, high = evaluation.classifier_low_level, evaluation.classifier_high_level
    out: dict[str, Any] = {
        "mean_separation_power": evaluation.mean_separation_power,
        "fpd_x1e3": 1e3 * evaluation.fpd.value,
        "kpd_x1e3": 1e3 * evaluation.kpd.value,
        "fpd_at_or_below_anchor": 1e3 * evaluation.fpd.value <= ANCHORS["best_fpd_x1e3"]["value"],
    }
    if low is not None and high is not None:
        out |= {
            "auc_low_level": low.auc,
            "auc_high_level": high.auc,
            "auc_low_at_or_below_anchor": low.auc <= ANCHORS["best_low_level_auc"]["value"],
            "auc_high_at_or_below_anchor": high.auc <= ANCHORS["best_high_level_auc"]["value"],
        }
    return out


def comparison(results: dict[str, Any]) -> list[str]:
    """Plain statements of how every model compares with the anchors and the real-data floor."""
    floor = results["reference"]["summary"]
    lines = [
        f"real vs real showers at these sample sizes give FPD x1e3 {floor['fpd_x1e3']:.3g} and "
        f"KPD x1e3 {floor['kpd_x1e3']:.3g}: what a perfect generator would get at these sizes "
        f"(the anchor FPD x1e3 {ANCHORS['best_fpd_x1e3']['value']} used far larger samples)"
    ]
    if "auc_low_level" in floor:
        lines.append(
            f"real vs real classifier AUCs {floor['auc_low_level']:.3f} (low level) and "
            f"{floor['auc_high_level']:.3f} (high level): the classifier's own noise floor"
        )
    for name, res in results.items():
        if name == "reference":
            continue
        summary = res["summary"]
        fpd_anchor = ANCHORS["best_fpd_x1e3"]["value"]
        parts = [f"FPD x1e3 {summary['fpd_x1e3']:.3g} vs anchor {fpd_anchor}"]
        if "auc_low_level" in summary:
            parts.append(
                f"AUC low {summary['auc_low_level']:.3f} vs anchor "
                f"{ANCHORS['best_low_level_auc']['value']}, high {summary['auc_high_level']:.3f} "
                f"vs anchor {ANCHORS['best_high_level_auc']['value']}"
            )
        met = [k for k, v in summary.items() if k.endswith("anchor") and v]
        verdict = f"meets {', '.join(met)}" if met else "meets none of the anchors"
        lines.append(f"{name}: {'; '.join(parts)}; {verdict}")
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write its JSON and plots."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load_at_start = os.getloadavg()
    geometry = load_binning(args.data / "binning_dataset_1_photons.xml")
    rng = np.random.default_rng(args.seed)
    train_all = read_showers(args.data / "photons_train.h5", geometry=geometry)
    eval_all = read_showers(args.data / "photons_eval.h5", geometry=geometry)
    order = rng.permutation(len(train_all))
    train = train_all.take(np.sort(order[: args.train_events]))
    reference = eval_all.take(np.sort(rng.permutation(len(eval_all))[: args.n_generate]))
    # real showers the models never saw, as a perfect generator's sample
    rest = order[args.train_events :] if len(order) > args.train_events else order
    real = train_all.take(np.sort(rest[: args.n_generate]))
    classifier = not args.no_classifier
    out_dir = args.output / "calo"

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", file=sys.stderr, flush=True)

    log("reference vs real showers")
    floor = evaluate_showers(reference, real, geometry, classifier=classifier)
    results: dict[str, Any] = {
        "reference": {
            "note": "real training-file showers vs the reference: the floor of every metric",
            "n_real": len(real),
            "summary": summarise(floor),
            "evaluation": floor.to_dict(),
        }
    }
    for name in args.models:
        params = model_params(name, args)
        log(f"{name}: training on {len(train)} showers")
        model = make_shower_model(name, geometry=geometry, **params)
        start = time.perf_counter()
        model.fit(train.showers, train.energies)
        train_seconds = time.perf_counter() - start
        log(f"{name}: trained in {train_seconds:.0f} s; timing generation")
        times, showers = generation_times(model, reference.energies, args.batch1_repeats, args.seed)
        generated = ShowerData(energies=reference.energies, showers=showers)
        log(f"{name}: {times}; evaluating")
        evaluation = evaluate_showers(reference, generated, geometry, classifier=classifier)
        plots = write_evaluation_plots(
            reference, generated, geometry, out_dir / name, labels=("reference", name)
        )
        histories = {
            key: {
                "epochs_run": sub.history_.epochs_run,
                "best_epoch": sub.history_.best_epoch,
                "best_val_loss": sub.history_.best_val_loss,
                "seconds": sub.history_.seconds,
            }
            for key, sub in model.models_.items()
        }
        results[name] = {
            "params": {k: v for k, v in params.items() if k != "verbose"},
            "train_seconds": train_seconds,
            "training": histories,
            "ms_per_shower": times,
            "summary": summarise(evaluation),
            "evaluation": evaluation.to_dict(),
            "plots": {k: _shown(v) for k, v in plots.items()},
        }
    report = {
        "benchmark": "calo",
        "data": {
            "train": str(args.data / "photons_train.h5"),
            "reference": str(args.data / "photons_eval.h5"),
            "n_train": len(train),
            "n_reference": len(reference),
            "note": "GFlash-style parametrised photon showers, not Geant4: AUCs are not directly "
            "comparable with the challenge's tables",
        },
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            # other processes on the machine slow every timing; the load says how much
            "load_average_1min_start_end": [load_at_start[0], os.getloadavg()[0]],
        },
        "anchors": ANCHORS,
        "comparison": comparison(results),
        "results": results,
        "wall_seconds": time.perf_counter() - started,
    }
    path = write_atomic(args.output / "calo.json", json.dumps(report, indent=2) + "\n")
    log(f"wrote {path}")
    return report


if __name__ == "__main__":
    main()
