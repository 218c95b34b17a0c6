"""Command line of the shower surrogate: ``resonance-search calo <command>``.

Commands: train, generate, check, evaluate, amplification. Each mirrors the Python API
(`make_shower_model(...).fit`, `ShowerModel.sample`, `evaluate_showers`, `amplification_study`),
reads and writes the CaloChallenge HDF5 format, writes every result atomically and shows
progress bars on stderr when it is a terminal. Exit code 1 means the inputs or the run failed
(the message says why).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer
import yaml
from tqdm.auto import tqdm

from generative.calo.amplification import amplification_study
from generative.calo.classifier import ClassifierConfig
from generative.calo.evaluation import evaluate_showers, write_evaluation_plots
from generative.calo.features import DEFAULT_THRESHOLD_MEV, high_level_features
from generative.calo.io import ShowerData, read_showers, write_showers
from generative.calo.models import SHOWER_MODELS, ShowerModel, make_shower_model, resolve_geometry
from generative.calo.plots import plot_amplification, save_figure
from generative.calo.submission import check_submission
from generative.fileio import write_atomic
from generative.training import merge_settings

__all__ = ["DATASET_1_ENERGIES", "calo_app"]

#: the 15 incident energies of CaloChallenge dataset 1, 2^8 ... 2^22 MeV
DATASET_1_ENERGIES = 2.0 ** np.arange(8, 23)

calo_app = typer.Typer(
    help="Calorimeter shower surrogate: train a shower model, generate showers, evaluate them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

GEOMETRY_OPT = typer.Option(
    "1-photons", "--geometry", "-g", help="Data set name (1-photons, 1-pions, 2, 3) or binning XML."
)
SEED_OPT = typer.Option(0, "--seed", help="Random seed.")
QUIET_OPT = typer.Option(False, "--quiet", "-q", help="No progress bars.")
MAX_EVENTS_OPT = typer.Option(None, "--max-events", help="Use only the first N events.")


def _finite(value: float) -> float | None:
    """A JSON number: None for inf (an unbounded amplification), which JSON cannot hold."""
    return float(value) if np.isfinite(value) else None


def _fail(err: Exception) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(1) from None


def _from_config(config: Path | None, model: str) -> tuple[str, dict[str, Any]]:
    """The model name and arguments of a YAML training config (or the given name and none)."""
    if config is None:
        return model, {}
    try:
        spec = yaml.safe_load(config.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{config} is not valid YAML: {err}") from None
    if not isinstance(spec, dict) or set(spec) - {"model", "params"}:
        raise ValueError(f"{config} must be a mapping with the keys 'model' and 'params'")
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError(f"{config}: params must be a mapping of model arguments")
    return str(spec.get("model", model)), params


def _model_params(params: str | None) -> dict[str, Any]:
    if params is None:
        return {}
    try:
        value = json.loads(params)
    except json.JSONDecodeError as err:
        raise ValueError(f"--params is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ValueError(f"--params must be a JSON object, got {type(value).__name__}")
    return value


@calo_app.command()
def train(
    data: Path = typer.Argument(..., help="Training showers (CaloChallenge HDF5)."),
    output: Path = typer.Option(..., "--output", "-o", help="Model file to write."),
    model: str = typer.Option(
        "caloflow_inn", "--model", "-m", help=f"Shower model: {', '.join(sorted(SHOWER_MODELS))}."
    ),
    geometry: str = GEOMETRY_OPT,
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs of every network."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Training batch size."),
    learning_rate: float | None = typer.Option(None, "--learning-rate", help="Adam step size."),
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        help="Training state, written every epoch (one file per network); the same command "
        "resumes an interrupted training from it.",
    ),
    minutes: float | None = typer.Option(
        None,
        "--minutes",
        help="Start no epoch expected to end past this many minutes of training per network "
        "(a cosine schedule then anneals over the time).",
    ),
    params: str | None = typer.Option(
        None, "--params", help="Model arguments as JSON, e.g. '{\"noise\": 0.01}'."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="YAML with `model` and `params` (e.g. configs/calo_gpu.yaml)."
    ),
    max_events: int | None = MAX_EVENTS_OPT,
    seed: int = SEED_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Fit a shower model p(shower | E_inc) and save it to one file."""
    try:
        geo = resolve_geometry(geometry)
        showers = read_showers(data, geometry=geo, max_events=max_events)
        model, extra = _from_config(config, model)
        extra = merge_settings(extra, _model_params(params))
        training = dict(extra.pop("training", None) or {})
        for key, value in (
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("learning_rate", learning_rate),
            ("checkpoint", None if checkpoint is None else str(checkpoint)),
            ("time_limit", None if minutes is None else 60.0 * minutes),
        ):
            if value is not None:
                training[key] = value
        shower_model = make_shower_model(
            model,
            **{
                "geometry": geo,
                "training": training or None,
                "random_state": seed,
                "verbose": not quiet,
                **extra,
            },
        )
        start = time.perf_counter()
        shower_model.fit(showers.showers, showers.energies)
        seconds = time.perf_counter() - start
        shower_model.save(output)
    except (ValueError, TypeError, KeyError, FileNotFoundError) as err:
        _fail(err)
    typer.echo(f"trained {model} on {len(showers)} showers in {seconds:.1f} s -> {output}")


@calo_app.command()
def generate(
    model: Path = typer.Argument(..., help="Model file written by `calo train`."),
    output: Path = typer.Option(..., "--output", "-o", help="Shower file to write (HDF5)."),
    energies_from: Path | None = typer.Option(
        None, "--energies-from", help="Generate one shower per incident energy of this file."
    ),
    n_per_energy: int | None = typer.Option(
        None, "--n-per-energy", help="Generate N showers at each dataset-1 energy 2^8..2^22 MeV."
    ),
    max_events: int | None = MAX_EVENTS_OPT,
    batch_size: int = typer.Option(
        10_000, "--batch-size", help="Showers per generation batch (bounds the memory)."
    ),
    dtype: str = typer.Option(
        "float32",
        "--dtype",
        help="float32 (as ../shared/data/calo) or float64 (for the challenge's classifier "
        "against a float32 reference).",
    ),
    seed: int = SEED_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Generate showers with a trained model and write them in the CaloChallenge format."""
    try:
        if dtype not in ("float32", "float64"):
            raise ValueError(f"--dtype must be float32 or float64, got {dtype!r}")
        if (energies_from is None) == (n_per_energy is None):
            raise ValueError("give exactly one of --energies-from and --n-per-energy")
        if energies_from is not None:
            energies = read_showers(energies_from, max_events=max_events).energies
        else:
            if n_per_energy < 1:
                raise ValueError(f"--n-per-energy must be at least 1, got {n_per_energy}")
            energies = np.repeat(DATASET_1_ENERGIES, n_per_energy)
        shower_model = ShowerModel.load(model)
        shower_model.verbose = not quiet
        start = time.perf_counter()
        showers = shower_model.sample(energies, batch_size=batch_size, random_state=seed)
        seconds = time.perf_counter() - start
        write_showers(
            output, ShowerData(energies=energies, showers=showers), dtype=np.dtype(dtype).type
        )
    except (ValueError, TypeError, KeyError, FileNotFoundError) as err:
        _fail(err)
    per_shower = 1e3 * seconds / max(len(energies), 1)
    typer.echo(
        f"generated {len(energies)} showers in {seconds:.1f} s ({per_shower:.2f} ms per shower) "
        f"-> {output}"
    )


@calo_app.command()
def check(
    showers: Path = typer.Argument(..., help="Shower file to check (HDF5)."),
    request: Path | None = typer.Option(
        None, "--request", help="File whose incident energies the showers must have, in order."
    ),
    geometry: str = GEOMETRY_OPT,
) -> None:
    """Check that a shower file is a valid CaloChallenge submission (exit code 1 if not)."""
    try:
        result = check_submission(showers, resolve_geometry(geometry), request=request)
    except (ValueError, OSError) as err:
        _fail(err)
    if not result.valid:
        _fail(ValueError(f"{showers} is not a valid submission: " + "; ".join(result.problems)))
    typer.echo(f"{showers}: valid submission, {result.n_events} showers, dtypes {result.dtypes}")


@calo_app.command()
def evaluate(
    reference: Path = typer.Argument(..., help="Reference showers (HDF5)."),
    generated: Path = typer.Argument(..., help="Generated showers (HDF5)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for metrics.json and plots."),
    geometry: str = GEOMETRY_OPT,
    threshold: float = typer.Option(
        DEFAULT_THRESHOLD_MEV, "--threshold", help="Zero voxels below this energy (MeV) first."
    ),
    classifier: bool = typer.Option(
        True, "--classifier/--no-classifier", help="Run the (slow) classifier tests."
    ),
    network: str = typer.Option(
        "fast",
        "--classifier-network",
        help="'challenge': the challenge's 3 x 2048 network, raw inputs, 50 epochs (comparable "
        "with published AUCs; hours on a CPU); 'fast': 2 x 256 on whitened inputs.",
    ),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the comparison plots."),
    max_events: int | None = MAX_EVENTS_OPT,
    seed: int = SEED_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Compare generated with reference showers: metrics.json and plots in the output folder."""
    try:
        configs = {"challenge": ClassifierConfig.challenge, "fast": ClassifierConfig}
        if network not in configs:
            raise ValueError(f"--classifier-network must be 'challenge' or 'fast', got {network!r}")
        geo = resolve_geometry(geometry)
        ref = read_showers(reference, geometry=geo, max_events=max_events)
        gen = read_showers(generated, geometry=geo, max_events=max_events)
        bar = tqdm(
            total=7 if classifier else 5,
            desc="evaluating",
            disable=quiet or not sys.stderr.isatty(),
            leave=False,
            file=sys.stderr,
        )

        def progress(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update()

        with bar:
            result = evaluate_showers(
                ref,
                gen,
                geo,
                threshold=threshold,
                classifier=classifier,
                classifier_config=configs[network](),
                random_state=seed,
                progress=progress,
            )
            written = {}
            if plots:
                progress("plots")
                written = write_evaluation_plots(
                    ref, gen, geo, output / "plots", threshold=threshold
                )
        summary = {
            "reference": str(reference),
            "generated": str(generated),
            "geometry": geo.particle,
            "classifier_network": network,
            **result.to_dict(),
            "plots": {k: str(v) for k, v in written.items()},
        }
        path = write_atomic(output / "metrics.json", json.dumps(summary, indent=2) + "\n")
    except (ValueError, TypeError, KeyError, FileNotFoundError) as err:
        _fail(err)
    low = result.classifier_low_level
    high = result.classifier_high_level
    auc = "" if low is None else f", AUC low {low.auc:.3f} high {high.auc:.3f}"
    typer.echo(
        f"mean separation power {result.mean_separation_power:.4f}, FPD x1e3 "
        f"{1e3 * result.fpd.value:.3f}{auc} -> {path}"
    )


#: observables of the amplification study by default (high-level features of dataset 1)
AMPLIFICATION_OBSERVABLES = (
    "E_tot_over_E_inc",
    "E_layer_0",
    "E_layer_1",
    "E_layer_2",
    "E_layer_3",
    "E_layer_12",
    "width_eta_layer_1",
    "width_eta_layer_2",
)


@calo_app.command()
def amplification(
    model: Path = typer.Argument(..., help="Model file written by `calo train`."),
    training: Path = typer.Option(..., "--training", help="The model's training showers (HDF5)."),
    truth: Path = typer.Option(..., "--truth", help="Independent reference showers (HDF5)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for amplification.json."),
    observables: list[str] = typer.Option(
        list(AMPLIFICATION_OBSERVABLES), "--observable", help="High-level feature to study."
    ),
    n_generate: int = typer.Option(
        100_000, "--n-generate", help="Showers to generate (at the truth's incident energies)."
    ),
    n_bins: int = typer.Option(20, "--bins", help="Quantile bins per observable."),
    geometry: str = GEOMETRY_OPT,
    threshold: float = typer.Option(
        DEFAULT_THRESHOLD_MEV, "--threshold", help="Zero voxels below this energy (MeV) first."
    ),
    seed: int = SEED_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """How many training showers the generated showers are worth, per observable, with plots.

    The quantile-chi2 study of arXiv:2008.06545 / arXiv:2202.07352: the truth-equivalent size of
    the generated sample divided by the training size is its amplification.
    """
    try:
        geo = resolve_geometry(geometry)
        train = read_showers(training, geometry=geo)
        ref = read_showers(truth, geometry=geo)
        shower_model = ShowerModel.load(model)
        shower_model.verbose = not quiet
        rng = np.random.default_rng(seed)
        energies = ref.energies[rng.integers(0, len(ref), n_generate)]
        generated = ShowerData(
            energies=energies, showers=shower_model.sample(energies, random_state=seed)
        )
        tables = {
            name: high_level_features(data, geo, threshold=threshold)
            for name, data in (("generated", generated), ("training", train), ("truth", ref))
        }
        unknown = [o for o in observables if o not in tables["truth"].columns]
        if unknown:
            raise ValueError(
                f"unknown observable(s) {unknown}; choose from {list(tables['truth'].columns)}"
            )
        results, plots = {}, {}
        for name in observables:
            result = amplification_study(
                *(tables[key][name].to_numpy() for key in ("generated", "training", "truth")),
                n_bins=n_bins,
                random_state=seed,
            )
            results[name] = {
                "amplification": _finite(result.amplification),
                "asymptotic_amplification": _finite(result.asymptotic_amplification),
                "truth_equivalent_size": _finite(result.equivalent_sizes[-1]),
                "training_equivalent_size": _finite(result.training_equivalent_size),
                "training_size": result.training_size,
                "n_generated": int(result.sizes.max()),
            }
            plots[name] = str(
                save_figure(plot_amplification(result), output / "plots" / f"{name}.png")
            )
        summary = {"model": str(model), "metric": "chi2", "n_bins": n_bins, "plots": plots}
        summary["observables"] = results
        summary["null_means"] = "unbounded: the generated discrepancy stays at the truth's floor"
        text = json.dumps(summary, indent=2, allow_nan=False)
        path = write_atomic(output / "amplification.json", text + "\n")
    except (ValueError, TypeError, KeyError, FileNotFoundError) as err:
        _fail(err)
    typer.echo(f"{'observable':<22} {'worth (showers)':>16} {'amplification':>14}")
    for name, res in results.items():
        worth, gain = (
            math.inf if v is None else v
            for v in (res["truth_equivalent_size"], res["amplification"])
        )
        typer.echo(f"{name:<22} {worth:>16.0f} {gain:>14.2f}")
    typer.echo(f"training showers: {len(train)}; generated: {n_generate} -> {path}")
