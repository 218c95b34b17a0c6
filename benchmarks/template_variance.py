"""Where CATHODE's signal-region template mismodelling comes from, on the LHCO data.

The template's closure AUC (SR data against template) stays above the true background's
whatever the flow's size (issue 16). This benchmark separates three candidate sources with one
two-sample test (anomaly.template_quality.two_sample_auc, SR data against each template at the
same SR masses, drawn from a KDE of the SR masses as CATHODE does):
- the network's seed: `--members` flows of the default settings (anomaly.FAST_MAF) that differ
  only in their network seed, each tested alone and as a mixture (every template event drawn
  from one member chosen at random); seed variance shrinks in the mixture, while what the
  sideband sample itself imprints on every member does not;
- the sideband sample's size: one flow on a random half of the training sidebands (the
  situation of each copy of a cross-fitted CATHODE);
- the mjj trend (`--decorrelate`): one flow with `decorrelate=True` (the linear mjj dependence
  removed exactly).
Every flow trains on the window's sidebands minus the same held-out share
(anomaly.sideband.fit_sideband_model). The control is the true SR background (parts 07-08)
against the same SR data: its AUC above 0.5 is the injected signal's share.

    nice -n 10 python benchmarks/template_variance.py --seeds 0

Output: benchmarks/results/template_variance.json, written atomically after every fit; seeds
already recorded under the same settings are kept, not rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from anomaly.cathode import make_density_model, sample_mjj, sample_valid
from anomaly.events import WindowEvents, check_window
from anomaly.sideband import fit_sideband_model
from anomaly.template_quality import two_sample_auc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lhco_sic import DATA, RESULTS, load, ready, settings_of, write_benchmark

#: settings that change the numbers: a resumed output must have been written with the same ones
_RESUME_KEYS = ("data_dir", "n_inject", "sr", "members", "oversampling", "fraction")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=DATA)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--n-inject", type=int, default=1000)
    p.add_argument("--sr", type=float, nargs=2, default=(3.3, 3.7), metavar=("LOW", "HIGH"))
    p.add_argument("--members", type=int, default=2, help="default flows, network seeds apart")
    p.add_argument("--oversampling", type=float, default=4.0)
    p.add_argument("--fraction", type=float, default=1.0, help="use this fraction of events")
    p.add_argument("--decorrelate", action="store_true", help="also a flow with decorrelate=True")
    p.add_argument("--output", type=Path, default=RESULTS / "template_variance.json")
    args = p.parse_args(argv)
    args.sb_width = None  # lhco_sic.load: sidebands are all events outside the SR
    if args.members < 1:
        p.error("--members must be at least 1")
    return args


def half_sidebands(window: WindowEvents, rng: np.random.Generator) -> WindowEvents:
    """The window with every SR event and a random half of its sideband events."""
    sb = np.flatnonzero(~window.in_sr)
    keep = np.sort(np.r_[np.flatnonzero(window.in_sr), rng.permutation(sb)[: len(sb) // 2]])
    return check_window(window.X[keep], window.mjj[keep], window.in_sr[keep])


def fit_template(
    window: WindowEvents,
    params: dict[str, Any] | None,
    seed: np.random.SeedSequence,
    masses: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fit a default-settings flow (updated by `params`) on the sidebands; its SR template."""
    model_seed, split_seed = seed.spawn(2)
    cpu, wall = time.process_time(), time.perf_counter()
    model = make_density_model("maf", params, model_seed)
    fit = fit_sideband_model(model, window, split_seed)
    sb = ~window.in_sr
    low, high = window.X[sb].min(axis=0), window.X[sb].max(axis=0)
    template, invalid = sample_valid(fit.model, masses, low, high, rng)
    history = fit.model.history_
    return template, {
        "params": params,
        "n_sideband_train": int(sb.sum() - len(fit.held_out)),
        "epochs": history.epochs_run,
        "best_epoch": history.best_epoch,
        "n_invalid": invalid,
        "cpu_seconds": time.process_time() - cpu,
        "wall_seconds": time.perf_counter() - wall,
        "load_average_after": os.getloadavg(),
    }


def run_seed(args: argparse.Namespace, seed: int, record: dict[str, Any], write) -> None:
    """Fill `record` with the control, every template's test and the mixture's, writing often."""
    d = load(args, seed)
    window = check_window(d["X"], d["mjj"], d["in_sr"])
    X_sr = window.X[window.in_sr]
    root = np.random.SeedSequence(seed)
    mass_seed, split_seed, test_seed, *member_seeds = root.spawn(3 + args.members + 2)
    masses = sample_mjj(
        window.mjj_sr, round(args.oversampling * len(X_sr)), np.random.default_rng(mass_seed)
    )
    test = int(test_seed.generate_state(1)[0])

    def tested(name: str, sample: np.ndarray, extra: dict[str, Any]) -> None:
        record[name] = {**extra, **two_sample_auc(X_sr, sample, random_state=test).to_dict()}
        print(f"seed {seed} {name}: AUC {record[name]['auc']:.4f}", flush=True)
        write()

    tested("control_true_background", d["background"], {})
    templates = []
    for k in range(args.members):
        sample, info = fit_template(
            window, None, member_seeds[k], masses, np.random.default_rng(member_seeds[k])
        )
        templates.append(sample)
        tested(f"member{k}", sample, info)
    if args.members > 1:
        pick = np.random.default_rng(split_seed).integers(0, args.members, len(masses))
        mixture = np.stack(templates)[pick, np.arange(len(masses))]
        tested("mixture", mixture, {"members": args.members})
    half_seed, decor_seed = member_seeds[args.members :]
    half = half_sidebands(window, np.random.default_rng(split_seed))
    sample, info = fit_template(half, None, half_seed, masses, np.random.default_rng(half_seed))
    tested("half_sidebands", sample, info)
    if args.decorrelate:
        sample, info = fit_template(
            window, {"decorrelate": True}, decor_seed, masses, np.random.default_rng(decor_seed)
        )
        tested("decorrelate", sample, info)
    singles = [record[f"member{k}"]["auc"] for k in range(args.members)]
    record["summary"] = {
        "member_auc_mean": float(np.mean(singles)),
        "mixture_minus_member_mean": (
            record["mixture"]["auc"] - float(np.mean(singles)) if args.members > 1 else None
        ),
        "half_minus_member_mean": record["half_sidebands"]["auc"] - float(np.mean(singles)),
        "decorrelate_minus_member_mean": (
            record["decorrelate"]["auc"] - float(np.mean(singles)) if args.decorrelate else None
        ),
        "control_excess_of_member_mean": float(np.mean(singles))
        - record["control_true_background"]["auc"],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the seeds (resuming an earlier output) and write JSON after every fit."""
    args = parse_args(argv)
    if not ready(args.data_dir):
        return 0
    settings = settings_of(args)
    settings = json.loads(json.dumps(settings))
    runs: list[dict[str, Any]] = []
    if args.output.is_file():
        old = json.loads(args.output.read_text())
        differ = [k for k in _RESUME_KEYS if old["settings"].get(k) != settings[k]]
        if differ:
            raise SystemExit(f"{args.output} has other settings ({', '.join(differ)})")
        runs = [r for r in old["runs"] if "summary" in r]

    def write() -> None:
        write_benchmark(args.output, "template_variance", settings, runs=runs)

    for seed in args.seeds:
        if any(r["seed"] == seed for r in runs):
            continue
        record: dict[str, Any] = {"seed": seed, "load_average_before": os.getloadavg()}
        runs.append(record)
        with threadpool_limits(1):
            run_seed(args, seed, record, write)
        write()
    write()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
