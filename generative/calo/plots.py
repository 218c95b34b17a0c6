"""Plots in the CaloChallenge style: feature histograms with ratio panels and average showers.

Figures are built with matplotlib's object API (no pyplot state, Agg rendering), returned to the
caller, and written atomically by `save_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from generative.calo.amplification import AmplificationResult
from generative.calo.features import feature_info
from generative.calo.geometry import CaloGeometry
from generative.calo.metrics import histogram_edges, separation_power_histograms
from generative.fileio import atomic_path

__all__ = [
    "plot_amplification",
    "plot_average_showers",
    "plot_feature_comparison",
    "plot_separation_powers",
    "save_figure",
    "write_feature_plots",
]

_REF_STYLE = {"histtype": "stepfilled", "alpha": 0.25, "color": "tab:blue", "linewidth": 1.5}
_GEN_STYLE = {"histtype": "step", "color": "tab:red", "linewidth": 2.0}


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 100) -> Path:
    """Write `fig` to `path` (format from the suffix) atomically; return the path."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png")
    return Path(path)


def _label(name: str) -> tuple[str, bool]:
    try:
        info = feature_info(name)
    except KeyError:
        return name, False
    return (f"{info.label} [{info.unit}]" if info.unit else info.label), info.log_scale


def plot_feature_comparison(
    reference: np.ndarray,
    generated: np.ndarray,
    name: str,
    *,
    n_bins: int = 50,
    labels: Sequence[str] = ("reference", "generated"),
) -> Figure:
    """Unit-normalised histograms of one feature, the generated/reference ratio below, and the
    separation power in the legend (under- and overflow folded into the outer bins)."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    gen = np.asarray(generated, dtype=np.float64).ravel()
    if ref.size == 0 or gen.size == 0:
        raise ValueError(f"feature {name!r}: {ref.size} reference and {gen.size} generated values")
    xlabel, log_scale = _label(name)
    edges = histogram_edges(ref, gen, n_bins, log_scale=log_scale)
    clip = (edges[0], np.nextafter(edges[-1], -np.inf))
    ref, gen = np.clip(ref, *clip), np.clip(gen, *clip)
    h_ref, _ = np.histogram(ref, edges)
    h_gen, _ = np.histogram(gen, edges)
    sep = separation_power_histograms(h_ref, h_gen)

    fig = Figure(figsize=(6, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.hist(ref, edges, weights=np.full(ref.size, 1.0 / ref.size), label=labels[0], **_REF_STYLE)
    top.hist(
        gen,
        edges,
        weights=np.full(gen.size, 1.0 / gen.size),
        label=f"{labels[1]}\nS = {sep:.2e}",
        **_GEN_STYLE,
    )
    top.set_ylabel("fraction of events")
    top.legend(title=f"{ref.size} vs {gen.size} events", fontsize="small")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (h_gen / gen.size) / (h_ref / ref.size)
        rel_err = np.sqrt(1.0 / h_ref + 1.0 / np.maximum(h_gen, 1))
    bottom.stairs(np.where(h_ref > 0, ratio, np.nan), edges, color="tab:red", linewidth=2.0)
    bottom.stairs(
        np.where(h_ref > 0, 1 + rel_err, np.nan),
        edges,
        baseline=np.where(h_ref > 0, 1 - rel_err, np.nan),
        fill=True,
        alpha=0.25,
        color="grey",
    )
    bottom.axhline(1.0, color="black", linewidth=0.8)
    bottom.set_ylim(0.5, 1.5)
    bottom.set_ylabel(f"{labels[1]} / {labels[0]}", fontsize="small")
    bottom.set_xlabel(xlabel)
    if log_scale:
        top.set_xscale("log")
    top.set_yscale("log")
    return fig


def write_feature_plots(
    reference: pd.DataFrame,
    generated: pd.DataFrame,
    directory: str | Path,
    *,
    n_bins: int = 50,
    fmt: str = "png",
    dpi: int = 100,
) -> dict[str, Path]:
    """One comparison plot per column of `reference`, written as ``<feature>.<fmt>``."""
    missing = [c for c in reference.columns if c not in generated.columns]
    if missing:
        raise KeyError(f"generated features lack column(s) {missing}")
    directory = Path(directory)
    written = {}
    for name in reference.columns:
        fig = plot_feature_comparison(reference[name], generated[name], str(name), n_bins=n_bins)
        written[name] = save_figure(fig, directory / f"{name}.{fmt}", dpi=dpi)
    return written


def plot_average_showers(
    geometry: CaloGeometry,
    samples: Mapping[str, np.ndarray],
    *,
    log_radius: bool = True,
    max_columns: int = 9,
) -> Figure:
    """Average shower per layer in polar (r, alpha) images, one block of rows per sample, with a
    shared logarithmic colour scale (mean energy per voxel, MeV)."""
    if not samples:
        raise ValueError("no samples to draw")
    means = {}
    for label, showers in samples.items():
        showers = np.asarray(showers, dtype=np.float64)
        if showers.ndim != 2 or showers.shape[1] != geometry.n_voxels or len(showers) == 0:
            raise ValueError(
                f"sample {label!r} must have shape (N >= 1, {geometry.n_voxels}), got "
                f"{showers.shape}"
            )
        means[label] = showers.mean(axis=0)
    vmax = max(float(m.max()) for m in means.values())
    vmax = vmax if vmax > 0 else 1.0
    norm = LogNorm(vmin=vmax * 1e-5, vmax=vmax)
    layers = geometry.active_layers
    n_cols = min(len(layers), max_columns)
    rows_per_sample = math.ceil(len(layers) / n_cols)
    n_rows = rows_per_sample * len(means)
    fig = Figure(figsize=(2.2 * n_cols + 1.0, 2.4 * n_rows), layout="constrained")
    mesh = None
    r_max = max(layer.r_edges[-1] for layer in layers)
    r_max = np.log1p(r_max) if log_radius else r_max
    for s, (label, mean) in enumerate(means.items()):
        for i, layer in enumerate(layers):
            row = s * rows_per_sample + i // n_cols
            ax = fig.add_subplot(n_rows, n_cols, row * n_cols + i % n_cols + 1, projection="polar")
            image = geometry.layer_image(mean, layer.layer_id)
            # split every angular bin so that even one-sector layers draw as smooth rings
            split = max(1, math.ceil(64 / layer.n_alpha))
            theta = np.linspace(-np.pi, np.pi, layer.n_alpha * split + 1)
            radii = np.asarray(layer.r_edges)
            radii = np.log1p(radii) if log_radius else radii
            values = np.repeat(image, split, axis=0)
            mesh = ax.pcolormesh(theta, radii, np.clip(values.T, vmax * 1e-5, None), norm=norm)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylim(0.0, r_max)
            ax.grid(False)
            ax.set_title(f"{label}: layer {layer.layer_id}", fontsize="small")
    scale = "log(1 + r / mm)" if log_radius else "r [mm]"
    fig.colorbar(mesh, ax=fig.axes, label=f"mean voxel energy [MeV]; radius {scale}", shrink=0.8)
    return fig


def plot_separation_powers(separation: pd.Series) -> Figure:
    """Horizontal bars of per-feature separation powers (log scale)."""
    if separation.empty:
        raise ValueError("no separation powers to draw")
    fig = Figure(figsize=(7, 0.28 * len(separation) + 1.2), layout="constrained")
    ax = fig.subplots()
    values = np.clip(separation.to_numpy(np.float64), 1e-8, None)
    ax.barh(np.arange(len(values)), values, color="tab:blue")
    ax.set_yticks(np.arange(len(values)), [str(i) for i in separation.index], fontsize="small")
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("separation power")
    return fig


def plot_amplification(result: AmplificationResult) -> Figure:
    """Discrepancy versus sample size for truth and generated samples, with the fitted curves
    and the training set's value."""
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    grid = np.geomspace(min(result.sizes.min(), result.truth_sizes.min()), result.sizes.max(), 100)
    ax.errorbar(result.truth_sizes, result.truth_mean, result.truth_std, fmt="o", label="truth")
    ax.plot(grid, result.truth_floor + result.truth_slope / grid, color="tab:blue", alpha=0.6)
    ax.errorbar(
        result.sizes, result.generated_mean, result.generated_std, fmt="s", label="generated"
    )
    ax.plot(
        grid, result.generated_floor + result.generated_slope / grid, color="tab:orange", alpha=0.6
    )
    ax.plot(
        [result.training_size],
        [result.training_discrepancy],
        "k*",
        markersize=12,
        label=f"training set ({result.training_size})",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of events")
    ax.set_ylabel(f"quantile {result.metric} ({result.n_bins} bins)")
    ax.set_title(f"amplification {result.amplification:.2f} at {result.sizes.max()} events")
    ax.legend()
    return fig
