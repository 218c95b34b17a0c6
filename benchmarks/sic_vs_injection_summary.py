"""Summary of the SIC-versus-injection units: bands over seeds, cost, plots and tables.

Read by `benchmarks/sic_vs_injection.py`; every number comes from the unit records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from analysis.config import SearchConfig
from analysis.defaults import DEFAULT_FEATURES

__all__ = [
    "code_markdown",
    "cost_markdown",
    "grid_cost",
    "markdown",
    "missing_markdown",
    "plot",
    "published_markdown",
    "summarise",
]

#: stands for a rejection beyond the floor (infinite) in percentiles
_BEYOND = 1e300
#: injection whose SIC curves are drawn
CURVES_AT = 1000
#: the CATHODE paper's median max SIC at 1000 injected (arXiv:2109.00546, 10 seeds, LHCO R&D with
#: Delphes, S/B 0.6%, FPR floor 1.84e-5), by detector; "shifted": jet masses + 0.1 mjj
PUBLISHED = {
    "standard": {
        "supervised": 17.65,
        "idealized": 15.08,
        "cathode": 13.99,
        "cwola": 10.75,
        "anode": 6.46,
    },
    "shifted": {"cathode": 10.18, "cwola": 1.04},
}
METRICS = ("max_sic", "auc", "rejection_at_eps_s_0p2", "rejection_at_eps_s_0p5")


def _band(values: list[float]) -> dict[str, float | None]:
    """Median and 16-84% band; +inf (a rejection beyond the floor) stays as null."""
    if not values:
        return {"median": None, "low": None, "high": None}
    # inf as a huge finite stand-in: interpolating inf with inf gives NaN, not inf.
    values = np.asarray(values, dtype=float)
    q = np.percentile(np.minimum(values, _BEYOND), [50, 16, 84])
    # A quantile between a measured value and one beyond the floor is beyond the floor too.
    largest = values[np.isfinite(values)].max(initial=-np.inf)
    names = ("median", "low", "high")
    return {k: (None if v > largest else float(v)) for k, v in zip(names, q, strict=True)}


def summarise(records: list[dict[str, Any]], labels: list[str], config: SearchConfig):
    """One row per (method, injection) over the seeds that finished."""
    rows = []
    for label in labels:
        for injection in config.compare.injections:
            mine = [r for r in records if r["method"] == label and r["injection"] == injection]
            done = [r for r in mine if "skipped" not in r]
            row: dict[str, Any] = {
                "method": label,
                "injection": injection,
                "seeds": sorted(r["seed"] for r in done),
                "skipped": sorted({r["skipped"] for r in mine if "skipped" in r}),
            }
            for metric in METRICS:
                inf = metric.startswith("rejection")
                values = [np.inf if r[metric] is None and inf else r[metric] for r in done]
                row[metric] = _band([v for v in values if v is not None])
                if inf:
                    row[metric]["n_beyond_floor"] = sum(r[metric] is None for r in done)
            # R-ANODE: the signal fraction w learnt, median over folds, then over seeds
            fractions = [
                float(np.median(r["signal_fractions"])) for r in done if "signal_fractions" in r
            ]
            if fractions:
                row["signal_fraction"] = _band(fractions)
            for key in ("seconds", "unit_wall_seconds", "unit_cpu_seconds"):
                row[f"median_{key}"] = _band([r[key] for r in mine if key in r])["median"]
            peaks = [r["peak_rss_mb"] for r in mine]
            row["max_peak_rss_mb"] = max(peaks) if peaks else None
            if mine:
                rows.append(row)
    return rows


def _seed(record: dict[str, Any]) -> int:
    return record["seed"]


def plot(rows: list[dict[str, Any]], records: list[dict[str, Any]], out: Path, floor: int):
    """SIC versus injection (median and band) and the SIC curves of the first seed at 1000."""
    import matplotlib.pyplot as plt

    from analysis.plots import plot_roc_sic

    fig, ax = plt.subplots(figsize=(8, 5.5))
    # One colour per method (the default cycle has 10 for up to 12 methods), MLPs dashed.
    colours = plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]
    for i, label in enumerate(dict.fromkeys(r["method"] for r in rows)):
        mine = [r for r in rows if r["method"] == label and r["max_sic"]["median"] is not None]
        if not mine:
            continue
        x = np.array([r["injection"] for r in mine])
        med = np.array([r["max_sic"]["median"] for r in mine])
        lo = np.array([r["max_sic"]["low"] for r in mine])
        hi = np.array([r["max_sic"]["high"] for r in mine])
        style = "--" if label.endswith("_mlp") else "-"
        (line,) = ax.plot(x, med, style, marker="o", color=colours[i], label=label)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("injected signal events (1000: about 635 in the SR, S/B about 0.8%)")
    ax.set_ylabel(f"max SIC (at least {floor} test-background events)")
    ax.set_title("Max SIC versus injected signal: median and 16-84% band over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    sic_path = out.with_name(out.stem + "_sic.png")
    fig.savefig(sic_path, dpi=120)
    plt.close(fig)
    curves = {}
    at = sorted((r for r in records if r["injection"] == CURVES_AT and r.get("roc")), key=_seed)
    for r in at:
        curves.setdefault(r["method"], (np.array(r["roc"]["eps_s"]), np.array(r["roc"]["eps_b"])))
    curves_path = out.with_name(out.stem + f"_curves_inj{CURVES_AT}.png")
    if curves:
        plot_roc_sic(curves_path, dict(sorted(curves.items())), f"{CURVES_AT} injected, first seed")
    return [sic_path.name] + ([curves_path.name] if curves else [])


def _shared_costs(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per density group (its first method), the shared part of each set of units that ran."""
    sets: dict[str, dict[tuple, dict[str, Any]]] = {}
    for r in records:
        if "shared" in r:
            shared = r["shared"]
            key = (r["injection"], r["seed"], tuple(shared["methods"]), shared["finished_utc"])
            sets.setdefault(shared["group"][0], {})[key] = shared
    return {group: list(found.values()) for group, found in sets.items()}


def grid_cost(
    records: list[dict[str, Any]], units: list[tuple[str, int, int]], groups: list[list[str]]
) -> dict[str, Any]:
    """Per method the median unit cost measured, and the whole grid's extrapolated from it.

    A density method's unit cost is its own (template, classifiers or fold flows); the sideband
    fit and data reading its group shares are counted once per (injection, seed) of the grid.
    """
    methods = {}
    for label in dict.fromkeys(u[0] for u in units):
        mine = [r for r in records if r["method"] == label and "skipped" not in r]
        n = sum(u[0] == label for u in units)
        cpu = _band([r["unit_cpu_seconds"] for r in mine])["median"]
        wall = _band([r["unit_wall_seconds"] for r in mine])["median"]
        methods[label] = {
            "n_units_measured": len(mine),
            "median_unit_cpu_seconds": cpu,
            "median_unit_wall_seconds": wall,
            "n_units_in_grid": n,
            "grid_cpu_hours": None if cpu is None else cpu * n / 3600,
        }
    shared_sets = _shared_costs(records)
    shared = {}
    for group in (g for g in groups if len(g) > 1 or g[0] in shared_sets):
        sets = shared_sets.get(group[0], [])
        n = len({(u[1], u[2]) for u in units if u[0] in group})
        cpu = _band([s["shared_cpu_seconds"] for s in sets])["median"]
        shared[group[0]] = {
            "methods": group,
            "n_sets_measured": len(sets),
            "median_sideband_cpu_seconds": _band([s["sideband_cpu_seconds"] for s in sets])[
                "median"
            ],
            "median_shared_cpu_seconds": cpu,
            "n_sets_in_grid": n,
            "grid_cpu_hours": None if cpu is None else cpu * n / 3600,
        }
    parts = [*methods.values(), *shared.values()]
    known = [m["grid_cpu_hours"] for m in parts if m["grid_cpu_hours"] is not None]
    complete = len(known) == len(parts)
    return {
        "methods": methods,
        "shared": shared,
        "grid_cpu_hours": sum(known) if complete else None,
        "grid_hours_on_2_cores": sum(known) / 2 if complete else None,
        "measured_cpu_hours": sum(known),
        "note": "median CPU seconds of a method's measured units times its units in the grid "
        "(skipped units, e.g. supervised without signal, counted at full cost), plus per density "
        "group the median shared CPU of a set (sideband fit, data reading) times the (injection, "
        "seed) pairs; 2 cores = two units at a time, each single-threaded",
    }


def cost_markdown(cost: dict[str, Any]) -> str:
    """The cost per unit and of the grid as tables."""

    def num(value: float | None, spec: str) -> str:
        return "not measured" if value is None else format(value, spec)

    lines = [
        "| method | units measured | unit CPU [s] | unit wall [s] | grid CPU [h] |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, m in cost["methods"].items():
        lines.append(
            f"| {label} | {m['n_units_measured']} | {num(m['median_unit_cpu_seconds'], '.0f')} "
            f"| {num(m['median_unit_wall_seconds'], '.0f')} | {num(m['grid_cpu_hours'], '.2f')} |"
        )
    for s in cost["shared"].values():
        sideband = s["median_sideband_cpu_seconds"]
        fit = "sideband fit" if sideband is None else f"sideband fit {sideband:.0f} CPU-s"
        lines.append(
            f"| shared by {', '.join(s['methods'])} ({fit}, data) | "
            f"{s['n_sets_measured']} sets | {num(s['median_shared_cpu_seconds'], '.0f')} | | "
            f"{num(s['grid_cpu_hours'], '.2f')} |"
        )
    total = cost["grid_cpu_hours"]
    lines.append("")
    if total is None:
        missing = [k for k, m in cost["methods"].items() if m["grid_cpu_hours"] is None]
        lines.append(
            f"Measured parts together: {cost['measured_cpu_hours']:.2f} CPU hours; not "
            f"measured: {', '.join(missing) or 'a shared part'}."
        )
    else:
        lines.append(
            f"The whole grid: {total:.2f} CPU hours, "
            f"{cost['grid_hours_on_2_cores']:.2f} h on two cores."
        )
    return "\n".join(lines) + "\n"


def code_markdown(records: list[dict[str, Any]]) -> str:
    """Which units ran with which commit of the code (short hash, and if it had local changes)."""
    by_commit: dict[str, dict[str, int]] = {}
    for r in records:
        code = r.get("code") or {}
        name = str(code.get("commit", "unknown"))[:7] + (
            " (local changes)" if code.get("dirty") else ""
        )
        count = by_commit.setdefault(name, {})
        count[r["method"]] = count.get(r["method"], 0) + 1
    lines = ["Units per code commit:", ""]
    for name, count in by_commit.items():
        cells = ", ".join(f"{label} {n}" for label, n in count.items())
        lines.append(f"- `{name}`: {cells}")
    return "\n".join(lines) + "\n"


def missing_markdown(missing: dict[str, dict[str, list[int]]]) -> str:
    """The units not run, as injection (number of seeds missing) per method."""
    if not missing:
        return "Every unit of the grid finished.\n"
    lines = ["Units not run, as injection (number of seeds missing):", ""]
    for label, by_injection in missing.items():
        cells = ", ".join(f"{inj} ({len(seeds)} seeds)" for inj, seeds in by_injection.items())
        lines.append(f"- `{label}`: injections {cells}")
    return "\n".join(lines) + "\n"


def markdown(rows: list[dict[str, Any]], floor: int) -> str:
    """The summary as a table: median [16%, 84%] over the seeds that finished."""

    def cell(band: dict[str, Any], spec: str) -> str:
        if band["median"] is None:
            return f"> floor ({band['n_beyond_floor']})" if band.get("n_beyond_floor") else "n/a"
        low, high = (
            format(band[k], spec) if band[k] is not None else "inf" for k in ("low", "high")
        )
        return f"{band['median']:{spec}} [{low}, {high}]"

    lines = [
        f"Median [16%, 84%] over seeds; max SIC and rejections where at least {floor} "
        "test-background events survive (beyond the floor: not measurable on this test set). "
        "Unit CPU and wall of a density method: its own, without the sideband fit and data "
        "reading its group shares (see the cost table); R-ANODE's row gives its learnt signal "
        "fraction w (median over folds, then over seeds).",
        "",
        "| method | injected | seeds | max SIC | AUC | 1/eps_B at eps_S=0.2 | at 0.5 "
        "| unit wall [s] | unit CPU [s] | peak RSS [MB] |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if not r["seeds"]:
            lines.append(
                f"| {r['method']} | {r['injection']} | 0 | n/a ({'; '.join(r['skipped'])}) |"
            )
            continue
        cpu, wall = r["median_unit_cpu_seconds"], r["median_unit_wall_seconds"]
        fraction = r.get("signal_fraction")
        w = "" if fraction is None else f" (w = {cell(fraction, '.4f')})"
        lines.append(
            f"| {r['method']}{w} | {r['injection']} | {len(r['seeds'])} | "
            f"{cell(r['max_sic'], '.2f')} | {cell(r['auc'], '.3f')} | "
            f"{cell(r['rejection_at_eps_s_0p2'], '.0f')} | "
            f"{cell(r['rejection_at_eps_s_0p5'], '.0f')} | "
            f"{wall:.0f} | {cpu:.0f} | {r['max_peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def published_markdown(
    rows: list[dict[str, Any]], detectors: dict[str, str], config: SearchConfig
) -> str:
    """Our max SIC at 1000 injected beside the CATHODE paper's, for the detectors it reports.

    `detectors` maps each method label of the config to its detector's name.
    """
    variant = "shifted" if config.data.mass_shift else "standard"
    if tuple(config.data.features) != DEFAULT_FEATURES:
        return "The CATHODE paper has no run with these features: no published numbers.\n"
    published = PUBLISHED[variant]
    lines = [
        f"Max SIC at {CURVES_AT} injected beside the CATHODE paper's median of 10 seeds "
        f"({variant} features; paper: LHCO R&D with Delphes, S/B 0.6%, FPR floor 1.84e-5; ours: "
        f"median [16%, 84%] of the seeds run, floor {config.compare.min_background} "
        "test-background events):",
        "",
        "| method | ours | seeds | paper |",
        "| --- | --- | --- | --- |",
    ]
    at = {r["method"]: r for r in rows if r["injection"] == CURVES_AT}
    for label, name in detectors.items():
        if name not in published:
            continue
        band = at[label]["max_sic"] if label in at else {"median": None}
        ours, seeds = "not run", 0
        if band["median"] is not None:
            ours = f"{band['median']:.2f} [{band['low']:.2f}, {band['high']:.2f}]"
            seeds = len(at[label]["seeds"])
        lines.append(f"| {label} | {ours} | {seeds} | {published[name]:.2f} |")
    return "\n".join(lines) + "\n"
