"""Outputs of a search: `results.json` (every number shown), plots and a Markdown report.

The report draws what the stages computed (`analysis.results`): it refits nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.config import SearchConfig
from analysis.plots import (
    plot_limits,
    plot_scores,
    plot_significance_map,
    plot_spectrum_fit,
    plot_template,
)
from analysis.regions import Window
from analysis.results import MethodOutcome, SearchData
from analysis.store import JSON, write_atomic, write_json

__all__ = ["MethodPlots", "write_report"]


@dataclass(frozen=True)
class MethodPlots:
    """The plots of one method."""

    significance: Path
    #: each cell's selected spectrum with its background model, by (window, efficiency index)
    spectra: dict[tuple[int, int], Path]
    scores: Path
    limits: Path | None
    template: Path | None
    #: the spectrum of the most significant valid cell, None when no cell is valid
    best: Path | None

    def all(self) -> list[Path]:
        """Every plot, in the order results.json lists them."""
        extra = [p for p in (self.limits,) if p is not None]
        last = [p for p in (self.template,) if p is not None]
        return [self.significance, *self.spectra.values(), *extra, self.scores, *last]


def _best(outcome: MethodOutcome) -> JSON:
    best = outcome.best
    if best is None:
        return {"window": None, "efficiency": None, "local_significance": None}
    return best.to_dict()


def _spectrum_plots(
    outcome: MethodOutcome, windows: Sequence[Window], folder: Path
) -> dict[tuple[int, int], Path]:
    """Every cell's selected spectrum over its window's fit range, with the scan's model."""
    scan, spectra = outcome.scan, outcome.spectra
    paths = {}
    for w, window in enumerate(windows):
        # The window's fit range only: no model outside it.
        bins = window.bins(spectra.edges).fit_range
        index = np.flatnonzero(bins)
        edges = spectra.edges[np.r_[index, index[-1] + 1]]
        for e, eff in enumerate(spectra.efficiencies):
            z = scan.significances[w, e]
            paths[w, e] = plot_spectrum_fit(
                folder / f"{outcome.label}_w{w:02d}_eff{eff:g}.png",
                edges,
                spectra.counts[w, e][bins],
                scan.expected[w, e][bins],
                (window.sr_low, window.sr_high),
                f"{outcome.label}, {window.name}, efficiency {eff:g}, local Z = {z:.2f}",
            )
    return paths


def _plots(
    config: SearchConfig,
    data: SearchData,
    windows: Sequence[Window],
    outcome: MethodOutcome,
    folder: Path,
) -> MethodPlots:
    """Significance map, every cell's spectrum with its fit, limits, score distributions."""
    scan = outcome.scan
    significance = plot_significance_map(
        folder / f"{outcome.label}_significance.png",
        [f"{w.sr_low:.2f}-{w.sr_high:.2f}" for w in windows],
        list(scan.efficiencies),
        np.where(scan.fit_valid, scan.significances, np.nan),
        f"{outcome.label}: local Z",
    )
    spectra = _spectrum_plots(outcome, windows, folder)
    limits = None
    if outcome.limits and any(limit["valid"] for limit in outcome.limits):
        limits = plot_limits(
            folder / f"{outcome.label}_limits.png",
            [0.5 * sum(limit["signal_region"]) for limit in outcome.limits],
            [limit["observed"] for limit in outcome.limits],
            [limit["expected"] for limit in outcome.limits],
            f"{outcome.label}: CLs limits at efficiency {outcome.limits[0]['efficiency']:g}",
        )
    w_best = scan.best[0] if np.isfinite(scan.max_significance) else 0
    window = windows[w_best]
    mjj = data.events["mjj"].to_numpy()
    scores = outcome.scores[w_best]
    samples = {
        "signal region": scores[window.sr_mask(mjj)],
        "sidebands": scores[window.sb_mask(mjj)],
    }
    if "label" in data.events:
        sr_signal = window.sr_mask(mjj) & (data.events["label"].to_numpy() == 1)
        if sr_signal.any():
            samples["signal region, true signal"] = scores[sr_signal]
    score_plot = plot_scores(
        folder / f"{outcome.label}_scores.png", samples, f"{outcome.label}, {window.name}"
    )
    template_plot = None
    template = outcome.templates.get(w_best)
    if template is not None:
        features = list(config.data.features)
        sr = data.events.loc[window.sr_mask(mjj), features].to_numpy()
        sb = data.events.loc[window.sb_mask(mjj), features].to_numpy()
        template_plot = plot_template(
            folder / f"{outcome.label}_template.png",
            features,
            {"SR data": sr, "background template": template, "sidebands": sb},
            f"{outcome.label}, {window.name}",
        )
    best = spectra[scan.best] if np.isfinite(scan.max_significance) else None
    return MethodPlots(significance, spectra, score_plot, limits, template_plot, best)


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def _limits_section(limits: list[JSON] | None) -> list[str]:
    """Markdown table of the CLs limits per window."""
    if not limits:
        return []
    eff = limits[0]["efficiency"]
    lines = [
        "",
        f"95% CLs upper limits on the selected signal yield (events) at efficiency {eff:g} "
        "(pyhf, asymptotic qtilde):",
        "",
        "| window | observed | expected -2 sigma | -1 sigma | median | +1 sigma | +2 sigma |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for limit in limits:
        low, high = limit["signal_region"]
        if not limit["valid"]:
            lines.append(f"| SR {low:.4g}-{high:.4g} TeV | n/a ({limit['message']}) |||||| ")
            continue
        cells = " | ".join(_fmt(v, ".1f") for v in limit["expected"])
        lines.append(
            f"| SR {low:.4g}-{high:.4g} TeV | {_fmt(limit['observed'], '.1f')} | {cells} |"
        )
    return lines


def _bias_section(bias: list[JSON] | None) -> list[str]:
    """Markdown summary of the bias tests and F-test choices (with stats.bias_test)."""
    if not bias:
        return []
    lines = [
        "",
        "Bias tests (pull of the fitted signal yield; tolerance: mean 0 +- 0.1, width 1 +- 0.1) "
        "and the F-test's dijet order:",
        "",
        "| window | F-test order | fit order | 0 sigma mean / width | 2 sigma | 5 sigma | passed |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in bias:
        if "error" in row:
            lines.append(f"| window {row['window']} | n/a ({row['error']}) ||||||")
            continue
        pulls = " | ".join(f"{i['mean_pull']:+.2f} / {i['width']:.2f}" for i in row["injections"])
        lines.append(
            f"| SR {row['sr_low']:.4g}-{row['sr_high']:.4g} TeV | {row['ftest_n_params']} | "
            f"{row['fit_n_params']} | {pulls} | {'yes' if row['passed'] else '**no**'} |"
        )
    return lines


def _link(path: Path, alt: str | None = None) -> str:
    return f"![{alt or path.stem}](plots/{path.name})"


def _global_text(best: JSON) -> str:
    global_z = _fmt(best.get("global_significance"))
    if best.get("global_is_limit"):
        global_z = f"> {global_z}"
    elif best.get("global_significance_error"):
        global_z += f" +- {best['global_significance_error']:.2f}"
    if best.get("global_method"):
        global_z += f" ({best['global_method']})"
    return global_z


def _template_lines(tests: list[JSON] | None) -> list[str]:
    return [
        f"- {t['window']}: template tests (two-sample AUC, data vs model; 0.5 = "
        "indistinguishable): "
        + "; ".join(
            f"{name} {r['auc']:.4f} +- {r['error']:.4f} ({r['z']:+.1f} sigma)"
            for name, r in t["tests"].items()
        )
        for t in tests or []
        if t["tests"]
    ]


def _closure_lines(closure: list[JSON] | None) -> list[str]:
    lines = []
    for c in closure or []:
        if not c["passed"] and c.get("covered"):
            lines.append(
                f"- {c['window']}: the classifier separates the data from the reference "
                f"(AUC {c['auc_data_vs_reference']:.4f}, at most {c['auc_allowed']:.4f} with "
                "the observed excess as signal); the template's mismodelling of each cut, "
                "measured on held-out sidebands, is a constrained nuisance of its cells."
            )
        elif not c["passed"]:
            lines.append(
                f"- **{c['window']}: not used.** The classifier separates the data from the "
                f"reference (AUC {c['auc_data_vs_reference']:.4f}, at most "
                f"{c['auc_allowed']:.4f} with the observed excess as signal): the reference "
                "is mismodelled and the window's excesses would be artefacts."
            )
    return lines


def _best_truth_lines(outcomes: Sequence[MethodOutcome]) -> list[str]:
    """Each best cell's selection by label, beside the background its fit predicts."""
    lines = [
        "",
        "Best cells by truth label (signal selected in the sidebands enters their fit as "
        "background):",
        "",
    ]
    for outcome in outcomes:
        best = outcome.best
        if best is None or outcome.truth is None:
            continue
        cell = outcome.truth.at(best.window_index, best.efficiency_index)
        lines.append(
            f"- {outcome.label}: {cell['signal_selected_in_sr']} signal and "
            f"{cell['background_selected_in_sr']} background events selected in the SR, "
            f"{best.background_sr:.1f} background fitted there "
            f"({_fmt(cell['background_only_fit_sr'], '.1f')} fitted to the selected "
            "background alone); "
            f"{cell['signal_selected_in_sidebands']} signal and "
            f"{cell['background_selected_in_sidebands']} background events selected in "
            "the sidebands"
        )
    return lines


def _markdown(
    config: SearchConfig,
    data: SearchData,
    windows: Sequence[Window],
    methods: dict[str, JSON],
    plots: dict[str, MethodPlots],
    outcomes: Sequence[MethodOutcome],
) -> str:
    about = data.description
    lines = [
        "# Resonance search report",
        "",
        f"Data: {about.source}, {about.n_events} events in "
        f"{about.mjj_range[0]}-{about.mjj_range[1]} TeV; features {', '.join(about.features)}.",
        f"Windows: {len(windows)} from {windows[0].sr_low:.2f} to {windows[-1].sr_high:.2f} TeV; "
        f"selection efficiencies {', '.join(f'{e:g}' for e in config.stats.efficiencies)}; "
        f"background: {config.stats.n_params}-parameter dijet fits of each window's sidebands; "
        f"look-elsewhere from {config.stats.n_pseudo} background-only pseudo-experiments "
        "(global Z from their count, or beyond it by Gross-Vitells upcrossings or the "
        "Bonferroni bound, as named).",
        "",
        "| method | best window | efficiency | local Z | global Z | fit time [s] |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, m in methods.items():
        best = m["best"]
        lines.append(
            f"| {label} | {best['window'] or 'n/a'} | {_fmt(best['efficiency'], 'g')} | "
            f"{_fmt(best['local_significance'])} | {_global_text(best)} | "
            f"{m['detector_seconds']:.0f} |"
        )
    truth = next((m["truth"] for m in methods.values() if m["truth"] is not None), None)
    if truth is not None and about.n_signal:
        lines += ["", f"Injected signal: {about.n_signal} events; in each SR:", ""]
        lines += [f"- {w.name}: {n}" for w, n in zip(windows, truth["signal_in_sr"], strict=True)]
        lines += _best_truth_lines(outcomes)
    for label, files in plots.items():
        method = methods[label]
        lines += ["", f"## {label}", "", _link(files.significance), _link(files.scores)]
        lines += [_link(p) for p in (files.template, files.limits) if p is not None]
        if files.best is not None:
            lines.append(_link(files.best, "best cell"))
        lines += ["", f"Background model: {method['background_model']}."]
        lines += _template_lines(method["template_tests"])
        lines += _closure_lines(method["reference_closure"])
        lines += _limits_section(method["limits"])
        lines += _bias_section(method["bias_test"])
        lines.append("")
        lines.append(
            "All spectra: "
            + ", ".join(f"[{p.stem}](plots/{p.name})" for p in files.spectra.values())
        )
    return "\n".join(lines) + "\n"


def write_report(
    config: SearchConfig,
    data: SearchData,
    windows: Sequence[Window],
    outcomes: Sequence[MethodOutcome],
) -> JSON:
    """Write results.json, the plots and report.md into the output folder; return the results."""
    output = Path(config.output)
    methods: dict[str, JSON] = {}
    plots: dict[str, MethodPlots] = {}
    for outcome in outcomes:
        methods[outcome.label] = {
            "best": _best(outcome),
            "scan": outcome.scan.to_dict(),
            "look_elsewhere": outcome.lee,
            "limits": outcome.limits,
            "bias_test": outcome.bias,
            "truth": None if outcome.truth is None else outcome.truth.to_dict(),
            "background_model": (
                "sideband fit of the selected spectrum"
                if outcome.spectra.reference_efficiency is None
                else "inclusive sideband fit x the cut's efficiency on the method's reference"
            ),
            "template_tests": outcome.window_template_tests(),
            "reference_closure": outcome.closure(),
            "detector_seconds": outcome.seconds,
            "sideband_events_scored_by_models_that_saw_them": outcome.n_seen,
        }
        plots[outcome.label] = _plots(config, data, windows, outcome, output / "plots")
    results = {
        "fingerprint": config.fingerprint(),
        "data": data.description.to_dict(),
        "windows": [
            {"name": w.name, "sr": [w.sr_low, w.sr_high], "fit_range": [w.sb_low, w.sb_high]}
            for w in windows
        ],
        "methods": methods,
        "plots": {k: [str(p.relative_to(output)) for p in v.all()] for k, v in plots.items()},
    }
    write_json(output / "results.json", results)
    write_atomic(output / "report.md", _markdown(config, data, windows, methods, plots, outcomes))
    return results
