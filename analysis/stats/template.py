"""Template background: a histogram of generated background events normalised to the sidebands."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TemplateBackground", "template_background"]


@dataclass(frozen=True, eq=False)
class TemplateBackground:
    """Background prediction per bin from a sample template, with its statistical uncertainties.

    `stat_uncertainty` is the per-bin uncertainty from the finite template sample;
    `norm_uncertainty` is the relative uncertainty of the sideband normalisation (data and
    template sideband counts), fully correlated across bins.
    """

    edges: np.ndarray
    prediction: np.ndarray
    stat_uncertainty: np.ndarray
    scale: float
    norm_uncertainty: float
    mask: np.ndarray

    def predict(self, edges: np.ndarray | None = None) -> np.ndarray:
        """Expected counts per bin; `edges` must be the template's binning or a contiguous slice."""
        return self.prediction[self._bins(edges)]

    def uncertainty(self, edges: np.ndarray | None = None) -> np.ndarray:
        """Per-bin template statistical uncertainty on the binning `edges`."""
        return self.stat_uncertainty[self._bins(edges)]

    def _bins(self, edges: np.ndarray | None) -> slice:
        if edges is None:
            return slice(None)
        edges = np.asarray(edges, dtype=float)
        start = int(np.argmin(np.abs(self.edges - edges[0])))
        stop = start + edges.size - 1
        if stop > self.prediction.size or not np.allclose(self.edges[start : stop + 1], edges):
            raise ValueError("edges must be a contiguous subset of the template's bin edges")
        return slice(start, stop)


def _finite_1d(name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {values.shape}")
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"{name} contains {int(bad.sum())} NaN/inf values")
    return values


def template_background(
    samples_mjj: np.ndarray,
    data_counts: np.ndarray,
    edges: np.ndarray,
    mask: np.ndarray,
    weights: np.ndarray | None = None,
) -> TemplateBackground:
    """Histogram generated background `samples_mjj` (TeV) and scale it to the data in the sidebands.

    `mask` is True on sideband bins (used for the normalisation) and False in the signal region.
    """
    edges = _finite_1d("edges", edges)
    samples = _finite_1d("samples_mjj", samples_mjj)
    data = _finite_1d("data_counts", data_counts)
    mask = np.asarray(mask, dtype=bool)
    if data.size != edges.size - 1 or mask.shape != data.shape:
        raise ValueError(
            f"data_counts and mask need len(edges) - 1 = {edges.size - 1} bins, "
            f"got {data.shape} and {mask.shape}"
        )
    weights = np.ones_like(samples) if weights is None else _finite_1d("weights", weights)
    if weights.shape != samples.shape:
        raise ValueError(f"weights must match samples_mjj: {weights.shape} vs {samples.shape}")
    sum_w, _ = np.histogram(samples, bins=edges, weights=weights)
    sum_w2, _ = np.histogram(samples, bins=edges, weights=weights**2)
    data_sb, template_sb = data[mask].sum(), sum_w[mask].sum()
    if data_sb <= 0 or template_sb <= 0:
        raise ValueError(
            f"empty sidebands: {data_sb:.0f} data events and {template_sb:.3g} template "
            "weight in the sideband bins"
        )
    empty = (sum_w <= 0) & ~mask
    if empty.any():
        raise ValueError(f"template has no events in {int(empty.sum())} signal-region bins")
    scale = data_sb / template_sb
    # Effective template sideband count for the normalisation uncertainty of weighted samples.
    template_sb_eff = template_sb**2 / sum_w2[mask].sum()
    return TemplateBackground(
        edges=edges,
        prediction=scale * sum_w,
        stat_uncertainty=scale * np.sqrt(sum_w2),
        scale=float(scale),
        norm_uncertainty=float(np.sqrt(1.0 / data_sb + 1.0 / template_sb_eff)),
        mask=mask,
    )
