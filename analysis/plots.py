"""Plots of a search in a HEP style: spectra and fits, significance maps, scores, ROC/SIC.

Every function draws one figure, writes it atomically to `path` (PNG) and returns the path; the
style is applied in a context, never globally. Figures are `matplotlib.figure.Figure` objects
rendered by Agg directly: nothing here touches pyplot or the process's matplotlib backend.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
import mplhep
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from generative.fileio import write_atomic

__all__ = [
    "plot_roc_sic",
    "plot_scores",
    "plot_significance_map",
    "plot_spectrum_fit",
    "plot_template",
]


@contextmanager
def _style() -> Iterator[None]:
    with mpl.style.context(mplhep.style.ROOT), mpl.rc_context({"font.size": 12}):
        yield


def _figure(**kwargs: object) -> Figure:
    """A figure drawn by Agg, outside pyplot (no global figure manager, no backend change)."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return write_atomic(path, buffer.getvalue())


def plot_spectrum_fit(
    path: str | Path,
    edges: np.ndarray,
    observed: np.ndarray,
    expected: np.ndarray | None,
    signal_region: tuple[float, float],
    title: str = "",
) -> Path:
    """Selected mjj spectrum, the background model and the pulls, signal region shaded.

    `expected` may hold NaN where the background is not modelled (drawn as a gap, no pull).
    """
    with _style():
        fig = _figure(figsize=(7, 6))
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        centres = 0.5 * (edges[1:] + edges[:-1])
        top.errorbar(centres, observed, yerr=np.sqrt(observed), fmt="ko", ms=3, label="selected")
        if expected is not None and np.isfinite(expected).any():
            top.stairs(expected, edges, color="C1", lw=1.5, label="background model")
            modelled = np.isfinite(expected) & (expected > 0)
            pulls = np.zeros_like(centres)
            pulls[modelled] = (observed[modelled] - expected[modelled]) / np.sqrt(
                expected[modelled]
            )
            bottom.bar(centres, pulls, width=np.diff(edges), color="C0")
        for ax in (top, bottom):
            ax.axvspan(*signal_region, color="grey", alpha=0.2)
        top.set_yscale("log")
        top.set_ylabel("events / bin")
        top.set_title(title, fontsize=11)
        top.legend(fontsize=9)
        bottom.axhline(0, color="k", lw=0.8)
        bottom.set_ylabel("pull")
        bottom.set_xlabel(r"$m_{jj}$ [TeV]")
        return _save(fig, path)


def plot_significance_map(
    path: str | Path,
    window_labels: Sequence[str],
    efficiencies: Sequence[float],
    significances: np.ndarray,
    title: str = "",
) -> Path:
    """Local significance per window (rows) and selection efficiency (columns)."""
    values = np.asarray(significances, dtype=float)
    with _style():
        fig = _figure(figsize=(1.4 * len(efficiencies) + 3, 0.5 * len(window_labels) + 2))
        ax = fig.subplots()
        image = ax.imshow(values, cmap="viridis", aspect="auto", vmin=0)
        for (i, j), z in np.ndenumerate(values):
            ax.text(
                j,
                i,
                "fail" if np.isnan(z) else f"{z:.1f}",
                ha="center",
                va="center",
                color="w" if np.isnan(z) or z < 0.6 * np.nanmax([values.max(), 1]) else "k",
                fontsize=9,
            )
        ax.set_xticks(range(len(efficiencies)), [f"{e:g}" for e in efficiencies])
        ax.set_yticks(range(len(window_labels)), window_labels)
        ax.set_xlabel("selection efficiency")
        ax.set_title(title, fontsize=11)
        fig.colorbar(image, ax=ax, label=r"local significance [$\sigma$]")
        return _save(fig, path)


def plot_scores(
    path: str | Path, samples: Mapping[str, np.ndarray], title: str = "", bins: int = 50
) -> Path:
    """Normalised distributions of anomaly scores of several event samples."""
    finite = [v[np.isfinite(v)] for v in samples.values()]
    low = min(float(v.min()) for v in finite if v.size)
    high = max(float(v.max()) for v in finite if v.size)
    edges = np.linspace(low, high, bins + 1)
    with _style():
        fig = _figure(figsize=(7, 5))
        ax = fig.subplots()
        for name, values in zip(samples, finite, strict=True):
            ax.hist(values, edges, density=True, histtype="step", lw=1.5, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("anomaly score")
        ax.set_ylabel("density")
        ax.set_title(title, fontsize=11)
        ax.legend(fontsize=9)
        return _save(fig, path)


def plot_roc_sic(
    path: str | Path, curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = ""
) -> Path:
    """SIC and background rejection against signal efficiency for several methods.

    `curves` maps a label to (eps_S, eps_B) arrays.
    """
    with _style():
        fig = _figure(figsize=(12, 5))
        left, right = fig.subplots(1, 2)
        for name, (eps_s, eps_b) in curves.items():
            keep = eps_b > 0
            left.plot(eps_s[keep], eps_s[keep] / np.sqrt(eps_b[keep]), label=name)
            right.plot(eps_s[keep], 1.0 / eps_b[keep], label=name)
        grid = np.linspace(1e-3, 1, 200)
        left.plot(grid, np.sqrt(grid), "k:", label="random")
        right.plot(grid, 1 / grid, "k:", label="random")
        left.set_xlabel(r"$\epsilon_S$")
        left.set_ylabel(r"SIC = $\epsilon_S / \epsilon_B^{1/2}$")
        right.set_xlabel(r"$\epsilon_S$")
        right.set_ylabel(r"rejection $1/\epsilon_B$")
        right.set_yscale("log")
        left.legend(fontsize=9)
        fig.suptitle(title, fontsize=11)
        return _save(fig, path)


def plot_template(
    path: str | Path,
    feature_names: Sequence[str],
    samples: Mapping[str, np.ndarray],
    title: str = "",
) -> Path:
    """Marginal distributions of each feature for several samples (e.g. SR data vs template)."""
    first = next(iter(samples.values()))
    with _style():
        fig = _figure(figsize=(4 * len(feature_names), 4))
        axes = fig.subplots(1, len(feature_names))
        axes = np.atleast_1d(axes)
        for i, (ax, name) in enumerate(zip(axes, feature_names, strict=True)):
            edges = np.linspace(*np.quantile(first[:, i], [0.001, 0.999]), 41)
            for label, values in samples.items():
                ax.hist(values[:, i], edges, density=True, histtype="step", lw=1.5, label=label)
            ax.set_xlabel(name)
        axes[0].legend(fontsize=9)
        fig.suptitle(title, fontsize=11)
        return _save(fig, path)


def plot_limits(
    path: str | Path,
    masses: Sequence[float],
    observed: Sequence[float | None],
    expected: Sequence[Sequence[float | None]],
    title: str = "",
) -> Path:
    """Limit versus mass ("Brazil" plot): observed, median expected and its 1 and 2 sigma bands."""

    def values(v) -> np.ndarray:
        return np.array([np.nan if x is None else x for x in v], dtype=float)

    masses = np.asarray(masses, dtype=float)
    bands = np.array([values(row) for row in expected]).reshape(len(masses), 5)
    with _style():
        fig = _figure(figsize=(7, 5))
        ax = fig.subplots()
        ax.fill_between(
            masses, bands[:, 0], bands[:, 4], color="#ffdf00", label=r"expected $\pm 2\sigma$"
        )
        ax.fill_between(
            masses, bands[:, 1], bands[:, 3], color="#00c000", label=r"expected $\pm 1\sigma$"
        )
        ax.plot(masses, bands[:, 2], "k--", label="expected (median)")
        ax.plot(masses, values(observed), "ko-", label="observed")
        ax.set_yscale("log")
        ax.set_xlabel(r"signal-region centre $m_{jj}$ [TeV]")
        ax.set_ylabel("95% CL upper limit on selected signal events")
        ax.set_title(title, fontsize=11)
        ax.legend(fontsize=9)
        return _save(fig, path)
