"""The `resonance-search` command line: subcommands mirror the Python API.

Exit codes: 0 success, 1 the search failed while running, 2 a bad command line or configuration.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from analysis.config import ConfigError, SearchConfig, example_yaml, load_config
from analysis.store import ConfigChangedError, write_atomic
from generative.calo.cli import calo_app

app = typer.Typer(
    help="Model-agnostic resonance searches: generative backgrounds, anomaly scores, bump hunts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(calo_app, name="calo")

log = logging.getLogger("resonance_search")

CONFIG_ARG = typer.Argument(
    None, help="YAML configuration; without it the embedded default (toy data) is used."
)
OUTPUT_OPT = typer.Option(None, "--output", "-o", help="Results folder (overrides the config).")


@app.callback()
def main(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
) -> None:
    """Model-agnostic resonance searches: generative backgrounds, anomaly scores, bump hunts."""
    level = logging.WARNING if quiet else (logging.INFO if verbose < 2 else logging.DEBUG)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )


def _config(path: Path | None, output: Path | None) -> SearchConfig:
    try:
        config = load_config(path)
    except ConfigError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from None
    return config.model_copy(update={"output": output}) if output is not None else config


def _fail(err: Exception) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(1) from None


@app.command()
def run(config: Path | None = CONFIG_ARG, output: Path | None = OUTPUT_OPT) -> None:
    """Run a whole search (resumes an interrupted run in the same output folder)."""
    from analysis.workflow import run_search

    cfg = _config(config, output)
    try:
        result = run_search(cfg)
    except (ConfigChangedError, ValueError, KeyError, OSError) as err:
        _fail(err)
    for label, method in result.results["methods"].items():
        best = method["best"]
        if best["window"] is None:
            typer.echo(f"{label}: no window with a valid background model (see the report)")
            continue
        glob = best.get("global_significance")
        glob_text = (
            "" if glob is None else f", global Z {'>' if best['global_is_limit'] else ''}{glob:.2f}"
        )
        typer.echo(
            f"{label}: largest excess in {best['window']} at efficiency {best['efficiency']:g}: "
            f"local Z {best['local_significance']:.2f}{glob_text}"
        )
    typer.echo(f"report: {result.output / 'report.md'}")


@app.command()
def compare(config: Path | None = CONFIG_ARG, output: Path | None = OUTPUT_OPT) -> None:
    """Compare methods on labelled data at several injections and seeds: SIC, AUC, rejection."""
    from analysis.compare import compare_folder, run_compare

    cfg = _config(config, output)
    try:
        result = run_compare(cfg)
    except (ConfigChangedError, ValueError, KeyError, OSError) as err:
        _fail(err)
    for row in result["summary"]:
        sic = "n/a" if row["max_sic"] is None else f"{row['max_sic']:.2f}"
        auc = "n/a" if row["auc"] is None else f"{row['auc']:.3f}"
        typer.echo(f"injection {row['injection']:>6}  {row['method']:<12} max SIC {sic}  AUC {auc}")
    typer.echo(f"table: {compare_folder(cfg) / 'compare.md'}")


@app.command("config")
def config_command(
    example: bool = typer.Option(False, "--example", help="Write a documented example config."),
    output: Path = typer.Option(
        Path("resonance-search.yaml"), "--output", "-o", help="Where to write it."
    ),
    check: Path | None = typer.Option(None, "--check", help="Validate this config and report."),
) -> None:
    """Write a documented example configuration, or check one."""
    if check is not None:
        cfg = _config(check, None)
        typer.echo(f"{check}: valid (fingerprint {cfg.fingerprint()})")
        return
    if not example:
        typer.echo("nothing to do: pass --example or --check FILE", err=True)
        raise typer.Exit(2)
    write_atomic(output, example_yaml())
    typer.echo(f"wrote {output}")


@app.command()
def demo(
    output: Path = typer.Option(Path("resonance-search-demo"), help="Folder for the results."),
    events: int = typer.Option(200_000, help="Number of toy background events."),
    epochs: int = typer.Option(30, help="Training epochs of the flow."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Fit a flow to the toy's sidebands, sample the signal region, save a plot and the model."""
    from analysis.demo import run_demo

    result = run_demo(output, n_events=events, epochs=epochs, random_state=seed)
    typer.echo(
        f"fitted on {result.n_sideband} sideband events in {result.train_seconds:.1f} s; "
        f"SR NLL per event {result.sr_nll_per_event:.3f}\n"
        f"model: {result.model_path}\nplot: {result.plot_path}"
    )


if __name__ == "__main__":
    app()
