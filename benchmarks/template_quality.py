"""How good CATHODE's background template is, per density model and setting, on the LHCO data.

For every variant (a density model and its settings) and seed, CATHODE is fitted on the
standard split (analysis.data.lhco_benchmark_split: parts 01-06 with `--n-inject` signal
events, SR 3.3-3.7 TeV, sidebands the rest or `--sb-width` TeV either side) and reports:
- the closure AUC: its own out-of-fold classifier, SR data against template (the workflow's
  closure test; the true SR background against the data is the control, `--control`);
- the template test (issue 16's goal): a fresh two-sample test (5-fold HGB,
  anomaly.template_quality.two_sample_auc) of SR data against the template, the test of the
  control;
- the sideband test: held-out (validation) sideband data against samples at their masses;
- the efficiency closure: pass fractions of those held-out sideband data and samples at the
  cuts keeping 10%, 1%, 0.2% of the SR template, and their ratio;
- the interpolation test (`--interpolation`): a model fitted on the outer sidebands against the
  inner-sideband data next to the SR;
- max SIC on the labelled test set (floor `--min-background` test-background events);
- CPU and wall seconds of the density fit, of the whole detector, the load average, and the
  CPU seconds the fitted model takes to sample 100k events at SR masses;
- with `--idealized`, the idealized detector on the same seed (same classifier back-end and
  floor; its background the extra simulated SR background) and CATHODE's max SIC ratio to it.

`--mass-shift 0.1` shifts both jet masses of every table by 0.1 mjj before the features are
built, as `configs/sic_vs_injection_shifted.yaml` does (the CATHODE paper's shifted test).

The output is resumed: (variant, seed) runs and idealized or control seeds already recorded
without an error under the same settings are kept, not rerun.

    nice -n 10 python benchmarks/template_quality.py --variants maf-affine maf-spline --seeds 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from analysis.metrics import compute_metrics
from anomaly import CATHODE, FAST_MAF, Idealized
from anomaly.template_quality import two_sample_auc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lhco_sic import DATA, RESULTS, load, ready, settings_of, write_benchmark

_AFFINE = {**FAST_MAF, "transform": "affine"}
#: variants whose CATHODE is fitted by sideband cross-fitting (anomaly.crossfit)
CROSS_FIT = frozenset({"default-crossfit"})
#: variants by name: (density model name, its parameters or None for the detector default)
VARIANTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "default": ("maf", None),
    # the search's default (resonance-search run cross-fits CATHODE under a fit background)
    "default-crossfit": ("maf", None),
    "maf-affine": ("maf", _AFFINE),
    "maf-affine-60ep": (
        "maf",
        {**_AFFINE, "training": {**FAST_MAF["training"], "epochs": 60, "patience": 10}},
    ),
    "maf-spline": ("maf", {**FAST_MAF, "transform": "spline"}),
    "maf-spline-4": ("maf", {**FAST_MAF, "transform": "spline", "n_transforms": 4}),
    "flow_matching": (
        "flow_matching",
        {"training": {"epochs": 30, "batch_size": 2048, "learning_rate": 2e-3}, "verbose": False},
    ),
    "diffusion": (
        "diffusion",
        {"training": {"epochs": 30, "batch_size": 2048, "learning_rate": 2e-3}, "verbose": False},
    ),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=DATA)
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["default"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--n-inject", type=int, default=1000)
    p.add_argument("--sr", type=float, nargs=2, default=(3.3, 3.7), metavar=("LOW", "HIGH"))
    p.add_argument("--sb-width", type=float, default=None, help="sideband width (TeV)")
    p.add_argument("--oversampling", type=float, default=4.0)
    p.add_argument("--hgb-models", type=int, default=None, help="HGB seeds per fold")
    p.add_argument("--interpolation", action="store_true", help="run the interpolation test")
    p.add_argument("--control", action="store_true", help="true SR background vs SR data")
    p.add_argument("--idealized", action="store_true", help="idealized detector per seed")
    p.add_argument("--min-background", type=int, default=50)
    p.add_argument("--fraction", type=float, default=1.0, help="use this fraction of events")
    p.add_argument(
        "--mass-shift", type=float, default=0.0, help="jet masses + this x mjj (shifted test)"
    )
    p.add_argument("--output", type=Path, default=RESULTS / "template_quality.json")
    return p.parse_args(argv)


def closure_auc(scores_sr: np.ndarray, scores_template: np.ndarray) -> dict[str, float]:
    """Out-of-fold AUC of the detector's classifier, SR data (1) against its template (0)."""
    n1, n0 = len(scores_sr), len(scores_template)
    auc = roc_auc_score(np.r_[np.ones(n1), np.zeros(n0)], np.r_[scores_sr, scores_template])
    return {"auc": float(auc), "error": float(np.sqrt((n1 + n0 + 1) / (12.0 * n1 * n0)))}


def classifier_options(args: argparse.Namespace) -> dict[str, Any]:
    """The classifier settings CATHODE and the idealized detector share."""
    return {} if args.hgb_models is None else {"classifier_params": {"n_models": args.hgb_models}}


def run_idealized(args: argparse.Namespace, d: dict[str, Any], seed: int) -> dict:
    """The idealized detector (SR data against simulated SR background) on the same seed."""
    det = Idealized(**classifier_options(args), random_state=seed)
    load_before = os.getloadavg()
    cpu, wall = time.process_time(), time.perf_counter()
    det.fit(d["X"], d["mjj"], d["in_sr"], background=d["background"])
    scores = det.score_samples(d["X_eval"], d["mjj_eval"])
    metrics = compute_metrics(d["y_eval"], scores, min_background=args.min_background)
    return {
        "seed": seed,
        "max_sic": metrics.max_sic,
        "auc_test": metrics.auc,
        "cpu_seconds": time.process_time() - cpu,
        "wall_seconds": time.perf_counter() - wall,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }


def sampling_seconds(model: Any, mjj_sr: np.ndarray, seed: int) -> float:
    """CPU seconds the fitted density model takes to draw 100k events at SR masses."""
    masses = np.random.default_rng(seed).choice(mjj_sr, 100_000)
    cpu = time.process_time()
    model.sample(masses[:, None], random_state=seed)
    return time.process_time() - cpu


def run_variant(name: str, args: argparse.Namespace, d: dict[str, Any], seed: int) -> dict:
    """Fit CATHODE with one variant's density model and measure its template."""
    model, params = VARIANTS[name]
    options: dict[str, Any] = {"density_model": model, "oversampling": args.oversampling}
    if params is not None:
        options["density_params"] = params
    options.update(classifier_options(args))
    cross_fit = name in CROSS_FIT
    det = CATHODE(
        **options, interpolation_test=args.interpolation, cross_fit=cross_fit, random_state=seed
    )
    load_before = os.getloadavg()
    cpu, wall = time.process_time(), time.perf_counter()
    det.fit(d["X"], d["mjj"], d["in_sr"])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    # a cross-fitted detector holds two copies, each with its own template and tests
    copies = det.copies_ if cross_fit else [det]
    histories = [c.density_model_.history_ for c in copies]
    sampling = sampling_seconds(copies[0].density_model_, d["mjj"][d["in_sr"]], seed)
    # issue 16's template test: a fresh 5-fold HGB, SR data against the (first copy's) template
    template_test = two_sample_auc(d["X"][d["in_sr"]], copies[0].reference_, random_state=seed)
    result = det.result_
    scores = det.score_samples(d["X_eval"], d["mjj_eval"])
    metrics = compute_metrics(d["y_eval"], scores, min_background=args.min_background)
    return {
        "variant": name,
        "seed": seed,
        "density_model": model,
        "density_params": params,
        "closure": closure_auc(result.scores[d["in_sr"]], result.reference.scores),
        "template_test": template_test.to_dict(),
        "cross_fit": cross_fit,
        "template_tests_by_copy": [
            {k: t.to_dict() for k, t in c.template_tests_.items()} for c in copies
        ],
        "sideband_efficiency": (
            None if det.sideband_efficiency_ is None else det.sideband_efficiency_.to_dict()
        ),
        "max_sic": metrics.max_sic,
        "auc_test": metrics.auc,
        "density_fit_seconds": sum(h.seconds for h in histories),
        "density_fit_cpu_seconds": sum(h.cpu_seconds for h in histories),
        "sample_cpu_seconds_per_100k": sampling,
        "density_epochs": [h.epochs_run for h in histories],
        "density_best_epoch": [h.best_epoch for h in histories],
        "detector_cpu_seconds": cpu,
        "detector_wall_seconds": wall,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }


def _median(values: Iterable[float]) -> float | None:
    """Median of the values, None when there are none (runs recorded before a field existed)."""
    values = list(values)
    return float(np.median(values)) if values else None


def _copy_tests(run: dict) -> list[dict]:
    """The template tests of each fitted copy (one, or two when cross-fitted) of a run."""
    if "template_tests_by_copy" in run:
        return run["template_tests_by_copy"]
    return [run["template_tests"]]  # runs recorded before cross-fitting variants existed


def summarise(runs: list[dict], idealized: list[dict]) -> dict[str, dict[str, float]]:
    """Medians over seeds per variant (and of the ratio to the idealized detector's max SIC)."""
    out = {}
    ideal = {r["seed"]: r["max_sic"] for r in idealized if "max_sic" in r}
    if ideal:
        out["idealized"] = {
            "n_seeds": len(ideal),
            "median_max_sic": float(np.median(list(ideal.values()))),
        }
    for name in dict.fromkeys(r["variant"] for r in runs):
        rows = [r for r in runs if r["variant"] == name and "closure" in r]
        if not rows:
            continue
        summary = {
            "n_seeds": len(rows),
            "median_closure_auc": float(np.median([r["closure"]["auc"] for r in rows])),
            "median_template_test_auc": _median(
                r["template_test"]["auc"] for r in rows if "template_test" in r
            ),
            "median_max_sic": float(np.median([r["max_sic"] for r in rows])),
            "median_detector_cpu_seconds": float(
                np.median([r["detector_cpu_seconds"] for r in rows])
            ),
        }
        for test in ("sideband", "interpolation"):
            values = [t[test]["auc"] for r in rows for t in _copy_tests(r) if test in t]
            if values:
                summary[f"median_{test}_auc"] = float(np.median(values))
        paired = [(r["max_sic"], ideal[r["seed"]]) for r in rows if r["seed"] in ideal]
        if paired:
            cathode, idealized_sic = np.array(paired).T
            summary["n_seeds_with_idealized"] = len(paired)
            summary["median_ratio_to_idealized"] = float(np.median(cathode / idealized_sic))
            summary["ratio_of_medians_to_idealized"] = float(
                np.median(cathode) / np.median(idealized_sic)
            )
        out[name] = summary
    return out


#: settings that change the numbers: a resumed output must have been written with the same ones
_RESUME_KEYS = (
    "data_dir",
    "n_inject",
    "sr",
    "sb_width",
    "oversampling",
    "hgb_models",
    "interpolation",
    "min_background",
    "fraction",
    "mass_shift",
)
#: the values of settings added later, for outputs written before them
_SETTING_DEFAULTS = {"mass_shift": 0.0}


def previous_results(args: argparse.Namespace) -> tuple[list[dict], list[dict], list[dict]]:
    """Runs, controls and idealized records of an earlier output with the same settings."""
    if not args.output.is_file():
        return [], [], []
    old = json.loads(args.output.read_text())
    settings = json.loads(json.dumps(settings_of(args)))
    recorded = {**_SETTING_DEFAULTS, **old["settings"]}
    differ = [k for k in _RESUME_KEYS if recorded.get(k) != settings[k]]
    if differ:
        raise SystemExit(
            f"{args.output} was written with other settings ({', '.join(differ)}); "
            "give another --output"
        )
    runs = [r for r in old["runs"] if "error" not in r]
    return runs, old.get("control_true_background", []), old.get("idealized", [])


def main(argv: list[str] | None = None) -> int:
    """Run the variants and write JSON (after every run, atomically), resuming an earlier run."""
    args = parse_args(argv)
    if not ready(args.data_dir):
        return 0
    runs, controls, idealized = previous_results(args)
    settings = settings_of(args)

    def write() -> None:
        write_benchmark(
            args.output,
            "template_quality",
            settings,
            control_true_background=controls,
            idealized=idealized,
            runs=runs,
            summary=summarise(runs, idealized),
        )

    for seed in args.seeds:
        todo = [
            n
            for n in args.variants
            if not any(r["variant"] == n and r["seed"] == seed for r in runs)
        ]
        want_control = args.control and seed not in {c["seed"] for c in controls}
        want_ideal = args.idealized and seed not in {r["seed"] for r in idealized}
        if not (todo or want_control or want_ideal):
            continue
        d = load(args, seed, mass_shift=args.mass_shift)
        if want_control:
            with threadpool_limits(1):
                test = two_sample_auc(d["X"][d["in_sr"]], d["background"], random_state=seed)
            controls.append({"seed": seed, **test.to_dict()})
            print(f"seed {seed}: control (true SR background vs SR data) AUC {test.auc:.4f}")
        if want_ideal:
            with threadpool_limits(1):
                idealized.append(run_idealized(args, d, seed))
            print(json.dumps(idealized[-1]), flush=True)
            write()
        for name in todo:
            try:
                with threadpool_limits(1):
                    record = run_variant(name, args, d, seed)
            # A failing variant is recorded and the others still run.
            except Exception as err:
                record = {"variant": name, "seed": seed, "error": f"{type(err).__name__}: {err}"}
            runs.append(record)
            print(json.dumps(record), flush=True)
            write()
    write()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
