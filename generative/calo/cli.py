"""Command line of the shower surrogate: ``resonance-search calo train|generate|evaluate``.

Each command mirrors the Python API (`make_shower_model(...).fit`, `ShowerModel.sample`,
`evaluate_showers`), reads and writes the CaloChallenge HDF5 format, writes every result
atomically and shows progress bars on stderr when it is a terminal. Exit code 1 means the inputs
or the run failed (the message says why).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer
from tqdm.auto import tqdm

from generative.calo.evaluation import evaluate_showers, write_evaluation_plots
from generative.calo.features import DEFAULT_THRESHOLD_MEV
from generative.calo.io import ShowerData, read_showers, write_showers
from generative.calo.models import SHOWER_MODELS, ShowerModel, make_shower_model, resolve_geometry
from generative.fileio import write_atomic

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


def _fail(err: Exception) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(1) from None


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
        "caloflow", "--model", "-m", help=f"Shower model: {', '.join(sorted(SHOWER_MODELS))}."
    ),
    geometry: str = GEOMETRY_OPT,
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs of every network."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Training batch size."),
    learning_rate: float | None = typer.Option(None, "--learning-rate", help="Adam step size."),
    params: str | None = typer.Option(
        None, "--params", help="Model arguments as JSON, e.g. '{\"noise\": 0.01}'."
    ),
    max_events: int | None = MAX_EVENTS_OPT,
    seed: int = SEED_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Fit a shower model p(shower | E_inc) and save it to one file."""
    try:
        geo = resolve_geometry(geometry)
        showers = read_showers(data, geometry=geo, max_events=max_events)
        extra = _model_params(params)
        training = dict(extra.pop("training", None) or {})
        for key, value in (
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("learning_rate", learning_rate),
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
    seed: int = SEED_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Generate showers with a trained model and write them in the CaloChallenge format."""
    try:
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
        write_showers(output, ShowerData(energies=energies, showers=showers))
    except (ValueError, TypeError, KeyError, FileNotFoundError) as err:
        _fail(err)
    per_shower = 1e3 * seconds / max(len(energies), 1)
    typer.echo(
        f"generated {len(energies)} showers in {seconds:.1f} s ({per_shower:.2f} ms per shower) "
        f"-> {output}"
    )


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
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the comparison plots."),
    max_events: int | None = MAX_EVENTS_OPT,
    seed: int = SEED_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Compare generated with reference showers: metrics.json and plots in the output folder."""
    try:
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
