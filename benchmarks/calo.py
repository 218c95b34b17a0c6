"""Benchmark of the calorimeter shower surrogate on the photon showers of ../shared/data/calo.

Data: `photons_train.h5` (60k showers, CaloChallenge dataset-1 format and geometry) for
training, `photons_eval.h5` (30k independent showers) as the reference. Per shower model:
training time (wall and CPU seconds), generation time per shower at batch 1 (median of a few
calls after a warm-up), 1,000 and 10,000 (wall and CPU), peak memory (resident set), and the
CaloChallenge metrics of one generated shower per reference incident energy against the
reference: low- and high-level classifier AUCs, separation powers (quantile binning and the
challenge's fixed binning), FPD and KPD. A "reference" row evaluates real training showers
against the reference: what a perfect generator would get at these sample sizes.

The classifier is `--classifier challenge` (the challenge's 3 x 2048 network, raw inputs, Adam
2e-4, batch 1000, its 60/20/20 split) with `--classifier-epochs` epochs (the challenge trains
50; on two shared CPU cores one epoch on 36k showers costs minutes), or `fast` (2 x 256 on
whitened inputs, which finds differences in fewer epochs). The JSON states which was used.

Goals (issue 14, for one model): low-level AUC <= 0.60, high-level AUC <= 0.55, FPD x1e3 <= 3,
<= 2 ms per shower at batch 10k on this CPU. The JSON says for each whether it is met and by how
much it is missed. Anchors (CaloChallenge 2022, arXiv:2410.21611, Geant4 showers): CaloINN
0.626 / 0.638 / FPD 3.90 / 2.88 ms; the data here are a GFlash-style simulation, so the
anchors are context, not targets.

Resumable: the JSON is written atomically after every stage, the trainings checkpoint every
epoch (under `--showers-dir`/checkpoints); a rerun with the same settings continues where a
cut-off run stopped (`--fresh` starts over). Writes benchmarks/results/calo.json and the
generated showers (float32 CaloChallenge HDF5) under `--showers-dir`.
Example: /work/coord/heavy python benchmarks/calo.py --classifier-epochs 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generative.calo.classifier import ClassifierConfig
from generative.calo.evaluation import ShowerEvaluation, evaluate_showers
from generative.calo.geometry import load_binning
from generative.calo.io import ShowerData, read_showers, write_showers
from generative.calo.models import ShowerModel, make_shower_model
from generative.calo.timing import Stopwatch, generation_times
from generative.fileio import write_atomic
from generative.training import TrainingConfig

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "calo"
RESULTS = REPO / "benchmarks" / "results"
MODEL_SETTINGS = ("models", "epochs", "params", "train_minutes")
#: where a run writes, which its numbers do not depend on (a run in another checkout continues)
LOCATIONS = ("output", "showers_dir")
GOALS = {"auc_low_level": 0.60, "auc_high_level": 0.55, "fpd_x1e3": 3.0, "ms_per_shower": 2.0}
ANCHORS = {
    "source": "CaloChallenge 2022 (arXiv:2410.21611), dataset 1 photons, Geant4 showers",
    "CaloINN": {"auc_low": 0.626, "auc_high": 0.638, "fpd_x1e3": 3.90, "cpu_ms": 2.88},
    "CaloDiffusion": {"auc_low": 0.635, "auc_high": 0.536, "fpd_x1e3": 0.65, "cpu_ms": 4500},
    "CaloFlow student": {"auc_low": 0.761, "auc_high": 0.667, "fpd_x1e3": 3.15, "cpu_ms": 6.1},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (the defaults are the run recorded in benchmarks/results/calo.json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the photon files")
    parser.add_argument("--models", nargs="+", default=["caloflow_inn"])
    parser.add_argument("--train-events", type=int, default=None, help="default: all")
    parser.add_argument("--n-reference", type=int, default=None, help="default: all")
    parser.add_argument("--epochs", type=int, default=None, help="default: the model's own")
    parser.add_argument("--params", type=json.loads, default={}, help="model arguments (JSON)")
    parser.add_argument("--classifier", choices=["challenge", "fast"], default="challenge")
    parser.add_argument("--classifier-epochs", type=int, default=None)
    parser.add_argument("--no-classifier", action="store_true")
    parser.add_argument("--batch1-repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--showers-dir",
        type=Path,
        default=Path("/tmp/resonance-search-calo"),
        help="generated showers and, under checkpoints/, the training checkpoints",
    )
    parser.add_argument(
        "--train-minutes",
        type=float,
        default=60.0,
        help="no training epoch starts that would end past this (summed over resumed runs)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete the training checkpoints and ignore the stages an interrupted run finished",
    )
    return parser.parse_args(argv)


def classifier_config(args: argparse.Namespace) -> ClassifierConfig:
    """The classifier of the run: the challenge's or the fast one, epochs as asked."""
    config = ClassifierConfig.challenge() if args.classifier == "challenge" else ClassifierConfig()
    if args.classifier_epochs is None:
        return config
    training = TrainingConfig.coerce({"epochs": args.classifier_epochs}, defaults=config.training)
    return ClassifierConfig(
        n_hidden_layers=config.n_hidden_layers,
        width=config.width,
        preprocessing=config.preprocessing,
        split=config.split,
        training=training,
    )


def summarise(evaluation: ShowerEvaluation) -> dict[str, Any]:
    """The headline numbers of an evaluation."""
    low, high = evaluation.classifier_low_level, evaluation.classifier_high_level
    challenge = [v for v in evaluation.challenge_separation_powers.values() if np.isfinite(v)]
    return {
        "auc_low_level": None if low is None else low.auc,
        "auc_high_level": None if high is None else high.auc,
        "jsd_low_level": None if low is None else low.jsd,
        "jsd_high_level": None if high is None else high.jsd,
        "fpd_x1e3": 1e3 * evaluation.fpd.value,
        "kpd_x1e3": 1e3 * evaluation.kpd.value,
        "mean_separation_power": evaluation.mean_separation_power,
        "mean_challenge_separation_power": float(np.mean(challenge)),
    }


def goals(summary: dict[str, Any], ms_per_shower: float) -> dict[str, Any]:
    """Each goal of issue 14: the value, the target, whether it is met and the miss."""
    values = {**{k: summary[k] for k in GOALS if k in summary}, "ms_per_shower": ms_per_shower}
    out = {}
    for key, target in GOALS.items():
        value = values.get(key)
        met = None if value is None else bool(value <= target)
        miss = None if value is None or met else value - target
        out[key] = {"value": value, "target": target, "met": met, "missed_by": miss}
    out["all_met_by_one_model"] = all(g["met"] for g in out.values())
    return out


class LoadSampler:
    """The 1-minute load average every `interval` seconds in a background thread."""

    def __init__(self, interval: float = 60.0) -> None:
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> None:
        """End the sampling."""
        self._stop.set()


def previous_run(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The report of an earlier run with the same data, classifier and seed (else empty)."""
    try:
        report = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}

    def measured(values: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if k in settings and k not in LOCATIONS}

    return report if measured(report.get("settings", {})) == measured(settings) else {}


def train_model(
    name: str, args: argparse.Namespace, train: ShowerData, geometry: Any, log: Any
) -> tuple[ShowerModel, dict[str, Any]]:
    """A fitted model (resumed from its training checkpoints, or read back once trained)."""
    work = args.showers_dir / "checkpoints"
    params: dict[str, Any] = {"random_state": args.seed, "verbose": sys.stderr.isatty()}
    params |= args.params
    training = {
        **params.get("training", {}),
        "checkpoint": str(work / f"{name}.ckpt"),
        "time_limit": 60.0 * args.train_minutes,
    }
    if args.epochs is not None:
        training["epochs"] = args.epochs
    params["training"] = training
    log(f"{name}: training on {len(train)} showers (checkpoints in {work})")
    model = make_shower_model(name, geometry=geometry, **params)
    with Stopwatch() as watch:
        model.fit(train.showers, train.energies)
    histories = {key: sub.history_ for key, sub in model.models_.items()}
    record = {
        "params": {k: v for k, v in params.items() if k != "verbose"},
        # summed over resumed runs, from the checkpoints
        "training_seconds": {
            "wall_s": sum(h.seconds for h in histories.values()),
            "cpu_s": sum(h.cpu_seconds for h in histories.values()),
            "this_run": watch.record(),
        },
        "networks": {
            key: {
                "epochs_run": h.epochs_run,
                "epochs_this_run": h.epochs_this_run,
                "best_epoch": h.best_epoch,
                "best_val_loss": h.best_val_loss,
                "val_loss": h.val_loss,
                "stopped_early": h.stopped_early,
                "time_limited": h.time_limited,
            }
            for key, h in histories.items()
        },
        "threshold_mev": model.threshold_,
    }
    log(f"{name}: trained, {record['training_seconds']['wall_s']:.0f} s wall in all")
    return model, record


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write its JSON, resuming the stages of an interrupted run."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    cpu_started = time.process_time()
    load_at_start, epoch_started = os.getloadavg(), time.time()
    sampler = LoadSampler()
    # what every model's numbers depend on; a model's own settings go into its record, so runs
    # of further models add to the same JSON (and reuse its real-vs-real floor)
    settings = {
        k: str(v) if isinstance(v, Path) else v
        for k, v in vars(args).items()
        if k not in (*MODEL_SETTINGS, "fresh")
    }
    output = args.output / "calo.json"
    previous = {} if args.fresh else previous_run(output, settings)
    results: dict[str, Any] = previous.get("results", {})
    for name, record in results.items():
        # the model records of a run that kept every setting at the top level
        old = previous["settings"]
        if name != "reference":
            record.setdefault("settings", {k: old[k] for k in MODEL_SETTINGS[1:] if k in old})
    for path in (args.showers_dir / "checkpoints").glob("*.ckpt") if args.fresh else ():
        path.unlink()
    geometry = load_binning(args.data / "binning_dataset_1_photons.xml")
    rng = np.random.default_rng(args.seed)
    train_all = read_showers(args.data / "photons_train.h5", geometry=geometry)
    eval_all = read_showers(args.data / "photons_eval.h5", geometry=geometry)
    n_train = args.train_events or len(train_all)
    train = train_all.take(np.sort(rng.permutation(len(train_all))[:n_train]))
    n_ref = args.n_reference or len(eval_all)
    reference = eval_all.take(np.sort(rng.permutation(len(eval_all))[:n_ref]))
    # real showers as a perfect generator's sample (of the training file: the floor needs
    # showers from the same simulation, not showers unseen by a model)
    real = train_all.take(np.sort(rng.permutation(len(train_all))[:n_ref]))
    config = classifier_config(args)

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", file=sys.stderr, flush=True)

    def evaluate(generated: ShowerData) -> ShowerEvaluation:
        return evaluate_showers(
            reference,
            generated,
            geometry,
            classifier=not args.no_classifier,
            classifier_config=config,
            random_state=args.seed,
            progress=lambda stage: log(f"  {stage}"),
        )

    def write(complete: bool) -> Path:
        """The JSON so far (after every stage, so an interrupted run keeps what it measured)."""
        report = {
            "benchmark": "calo",
            "data": {
                "train": str(args.data / "photons_train.h5"),
                "reference": str(args.data / "photons_eval.h5"),
                "n_train": len(train),
                "n_reference": len(reference),
                "note": "GFlash-style parametrised photon showers, not Geant4: AUCs are not "
                "directly comparable with the challenge's tables",
            },
            "settings": settings,
            "classifier": {
                "kind": args.classifier,
                "n_hidden_layers": config.n_hidden_layers,
                "width": config.width,
                "preprocessing": config.preprocessing,
                "split": list(config.split),
                "training": config.training.to_dict(),
            },
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "cpu_count": os.cpu_count(),
                "niceness": os.nice(0),
            },
            # other processes on the machine slow every wall time; the load says how much. One
            # entry per process of the run (more than one when it was resumed)
            "runs": [
                *previous.get("runs", []),
                {
                    "argv": sys.argv[1:] if argv is None else argv,
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_started)),
                    "load_average_start": list(load_at_start),
                    "load_average_end": list(os.getloadavg()),
                    "load_average_1min_mean": float(np.mean(sampler.samples)),
                    "load_average_1min_max": float(np.max(sampler.samples)),
                    "wall_seconds": time.perf_counter() - started,
                    "cpu_seconds": time.process_time() - cpu_started,
                },
            ],
            "goals": GOALS,
            "anchors": ANCHORS,
            "results": results,
            "complete": complete,
        }
        return write_atomic(output, json.dumps(report, indent=2, allow_nan=False) + "\n")

    write(complete=False)
    for name in args.models:
        own = {k: getattr(args, k) for k in MODEL_SETTINGS[1:]}
        if "summary" in results.get(name, {}) and results[name].get("settings") == own:
            log(f"{name}: done in an earlier run")
            continue
        model, record = train_model(name, args, train, geometry, log)
        record = {"settings": own, **record}
        results[name] = record
        write(complete=False)
        times, showers = generation_times(model, reference.energies, args.batch1_repeats, args.seed)
        generated = ShowerData(energies=reference.energies, showers=showers)
        path = write_showers(args.showers_dir / f"{name}.h5", generated)
        record |= {
            "ms_per_shower": times,
            "generated_file": str(path),
            "generated_dtype": "float32",
        }
        log(f"{name}: {times}; evaluating")
        write(complete=False)
        with Stopwatch() as watch:
            evaluation = evaluate(generated)
        summary = summarise(evaluation)
        record |= {
            "summary": summary,
            "goals": goals(summary, times["batch_10000"]["wall_ms"]),
            "evaluation_seconds": watch.record(),
            "evaluation": evaluation.to_dict(),
        }
        write(complete=False)
    if "reference" not in results:
        log("reference vs real showers")
        with Stopwatch() as watch:
            floor = evaluate(real)
        results["reference"] = {
            "note": "real training-file showers vs the reference: the floor of every metric",
            "summary": summarise(floor),
            "evaluation_seconds": watch.record(),
            "evaluation": floor.to_dict(),
        }
    sampler.stop()
    path = write(complete=True)
    log(f"wrote {path}")
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
