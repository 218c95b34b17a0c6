"""The `resonance-search` command line."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Model-agnostic resonance searches.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Model-agnostic resonance searches: generative backgrounds, anomaly scores, bump hunts."""


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
