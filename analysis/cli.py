"""The `resonance-search` command line: subcommands mirror the Python API.

Exit codes: 0 success, 1 the search failed while running, 2 a bad command line or configuration.
Every failure a user can cause prints one line per problem naming the file or key; no traceback.
Heavy modules (torch, the workflow) load inside the commands, so `--help` and `config --check`
answer at once.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from analysis.config import SearchConfig
    from analysis.results import SearchResult

app = typer.Typer(
    help="Model-agnostic resonance searches: generative backgrounds, anomaly scores, bump hunts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

log = logging.getLogger("resonance_search")

CONFIG_ARG = typer.Argument(
    None, help="YAML configuration; without it the embedded default (toy data) is used."
)
OUTPUT_OPT = typer.Option(None, "--output", "-o", help="Results folder (overrides the config).")

#: the loggers -v turns to INFO
PACKAGES = ("analysis", "anomaly", "generative")
#: errors a user's input or environment causes: reported in one line, never as a traceback
USER_ERRORS = (ValueError, KeyError, TypeError, OSError, RuntimeError)


def _message(err: BaseException) -> str:
    # str(KeyError) is the repr of its argument; the argument is the message.
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return str(text) or type(err).__name__


def _exit(code: int, message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _guarded(action: Callable[[], Any]) -> Any:
    """Run `action`; a failure the input caused ends the command with exit 1 and one line."""
    try:
        return action()
    except USER_ERRORS as err:
        log.debug("the failure in full", exc_info=True)
        _exit(1, f"error: {_message(err)}")


@app.callback()
def main(
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="-v logs each stage and unit, -vv debug output."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors."),
) -> None:
    """Model-agnostic resonance searches: generative backgrounds, anomaly scores, bump hunts."""
    # Default: warnings only. -v: this package's stages and units; -vv: everything, libraries too.
    root = logging.ERROR if quiet else logging.DEBUG if verbose >= 2 else logging.WARNING
    logger = logging.getLogger()
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(root)
    ours = root if quiet or verbose != 1 else logging.INFO
    for package in PACKAGES:
        logging.getLogger(package).setLevel(ours)


class _StderrHandler(logging.StreamHandler):
    """Log lines to whatever sys.stderr is when they are written (test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _config(path: Path | None, output: Path | None) -> SearchConfig:
    from analysis.config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as err:
        _exit(2, str(err))
    return config.model_copy(update={"output": output}) if output is not None else config


@app.command()
def run(config: Path | None = CONFIG_ARG, output: Path | None = OUTPUT_OPT) -> None:
    """Run a whole search (resumes an interrupted run in the same output folder)."""
    cfg = _config(config, output)

    def search() -> SearchResult:
        from analysis.workflow import run_search

        return run_search(cfg)

    result = _guarded(search)
    for outcome in result.outcomes:
        best = outcome.best
        if best is None:
            typer.echo(f"{outcome.label}: no window with a valid background model (see the report)")
            continue
        glob = best.global_significance
        glob_text = (
            ""
            if glob is None or glob.significance is None
            else f", global Z {'>' if glob.is_limit else ''}{glob.significance:.2f}"
        )
        typer.echo(
            f"{outcome.label}: largest excess in {best.window.name} at efficiency "
            f"{best.efficiency:g}: local Z {best.local_significance:.2f}{glob_text}"
        )
    typer.echo(f"report: {result.output / 'report.md'}")


@app.command()
def compare(config: Path | None = CONFIG_ARG, output: Path | None = OUTPUT_OPT) -> None:
    """Compare methods on labelled data at several injections and seeds: SIC, AUC, rejection."""
    cfg = _config(config, output)

    def comparison() -> Any:
        from analysis.compare import run_compare

        return run_compare(cfg)

    result = _guarded(comparison)
    for row in result["summary"]:
        sic = "n/a" if row["max_sic"] is None else f"{row['max_sic']:.2f}"
        auc = "n/a" if row["auc"] is None else f"{row['auc']:.3f}"
        typer.echo(f"injection {row['injection']:>6}  {row['method']:<12} max SIC {sic}  AUC {auc}")
    from analysis.compare import compare_folder

    typer.echo(f"table: {compare_folder(cfg) / 'compare.md'}")


@app.command()
def sensitivity(
    config: Path | None = CONFIG_ARG,
    output: Path | None = OUTPUT_OPT,
    injections: list[int] = typer.Option(
        [0, 250, 500, 750, 1000, 1500, 2000],
        "--injection",
        "-i",
        help="Injected signal events (repeat the option for several).",
    ),
    seeds: list[int] = typer.Option(
        [0, 1, 2], "--seed", "-s", help="Master seeds (repeat the option for several)."
    ),
) -> None:
    """Run the whole search at each injection and seed: where each method reaches 3 and 5 sigma."""
    cfg = _config(config, output)

    def study() -> Any:
        from analysis.sensitivity import run_sensitivity

        return run_sensitivity(cfg, injections, seeds)

    result = _guarded(study)
    for method, reaches in result.reach.items():
        for reach in reaches:
            where = "not reached" if reach.injection is None else f"{reach.injection} injected"
            typer.echo(f"{method}: global {reach.threshold:g} sigma first at {where}")
    typer.echo(f"table: {result.output / 'sensitivity.md'}")


@app.command("config")
def config_command(
    example: bool = typer.Option(False, "--example", help="Write a documented example config."),
    output: Path = typer.Option(
        Path("resonance-search.yaml"), "--output", "-o", help="Where to write it."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    check: Path | None = typer.Option(None, "--check", help="Validate this config and report."),
) -> None:
    """Write a documented example configuration, or check one."""
    if check is not None:
        cfg = _config(check, None)
        named = [(f"data.paths.{i}", p) for i, p in enumerate(cfg.data.paths)]
        named += [("data.signal_path", cfg.data.signal_path)] if cfg.data.signal_path else []
        missing = [
            f"{check}: {key}: {path} does not exist" for key, path in named if not path.exists()
        ]
        if missing:
            _exit(2, "\n".join(missing))
        typer.echo(f"{check}: valid (fingerprint {cfg.fingerprint()})")
        return
    if not example:
        _exit(2, "nothing to do: pass --example or --check FILE")
    if output.is_dir():
        _exit(2, f"--output {output} is a directory; name the file to write")
    if output.exists() and not force:
        _exit(2, f"{output} exists; pass --force to overwrite it")
    from analysis.config import example_yaml
    from analysis.store import write_atomic

    _guarded(lambda: write_atomic(output, example_yaml()))
    typer.echo(f"wrote {output}")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def calo(ctx: typer.Context) -> None:
    """Calorimeter shower surrogate: train a shower model, generate showers, evaluate them."""
    # Mounted by forwarding, so the shower models (torch) load only when `calo` runs.
    from generative.calo.cli import calo_app

    calo_app(args=ctx.args, prog_name=f"{ctx.find_root().info_name} calo")


@app.command()
def demo(
    output: Path = typer.Option(Path("resonance-search-demo"), help="Folder for the results."),
    events: int = typer.Option(200_000, help="Number of toy background events."),
    epochs: int = typer.Option(30, help="Training epochs of the flow."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Fit a flow to the toy's sidebands, sample the signal region, save a plot and the model."""
    from analysis.demo import run_demo

    result = _guarded(lambda: run_demo(output, n_events=events, epochs=epochs, random_state=seed))
    typer.echo(
        f"fitted on {result.n_sideband} sideband events in {result.train_seconds:.1f} s; "
        f"SR NLL per event {result.sr_nll_per_event:.3f}\n"
        f"model: {result.model_path}\nplot: {result.plot_path}"
    )


if __name__ == "__main__":
    app()
