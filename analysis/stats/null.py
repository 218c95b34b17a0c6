"""The background-only hypothesis of a scan, and scans of its pseudo-experiments.

The null is background-only by construction: every selected spectrum is refitted on its
window's sidebands with the signal regions of all windows holding an excess (local Z >=
`mask_significance` at any efficiency) masked as well, and the inclusive spectrum likewise,
so an observed signal shapes neither its own window's null nor its neighbours'. A
pseudo-experiment draws the inclusive spectrum from a Poisson around the inclusive fit and
thins each window's selections binomially, loosest to tightest, with the fitted pass
fractions: that keeps the nesting of the efficiencies and the shared inclusive spectrum;
correlations between windows' selections are not modelled, which can only add effective
trials (a conservative global p-value). `pseudo_scan` redoes the scan of the cells the
observed scan tested (fit, model, q0), vectorised over pseudo-experiments, with the same
likelihoods as `analysis.stats.scan.scan_spectra`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.stats.dijet import fit_dijet
from analysis.stats.dijet_batch import BatchFit, fit_dijet_batch
from analysis.stats.inference import batch_discovery_significance
from analysis.stats.mismodelling import control_variation
from analysis.stats.models import gaussian_signal
from analysis.stats.scan import ScanConfig, ScanResult, scan_spectra
from analysis.stats.selection import SelectedSpectra

__all__ = ["NullModel", "background_only_model", "pseudo_scan"]


@dataclass(frozen=True, eq=False)
class NullModel:
    """Background-only means: inclusive spectrum, nested pass fractions, the cells to test."""

    spectra: SelectedSpectra
    inclusive_mean: np.ndarray
    pass_fraction: np.ndarray
    order: np.ndarray
    tested: np.ndarray
    masked_windows: tuple[int, ...]
    n_fallbacks: int

    def sample_batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """`size` pseudo-experiments: inclusive (size, bins) and counts (size, w, e, bins)."""
        inclusive = rng.poisson(self.inclusive_mean, (size, self.inclusive_mean.size))
        n_w, n_e, n_b = self.pass_fraction.shape
        counts = np.empty((size, n_w, n_e, n_b))
        for w in range(n_w):
            previous = inclusive
            for e in self.order:
                previous = rng.binomial(previous, self.pass_fraction[w, e])
                counts[:, w, e] = previous
        return inclusive.astype(float), counts

    def sample(self, rng: np.random.Generator) -> SelectedSpectra:
        """One background-only pseudo-experiment as spectra (for `scan_spectra`)."""
        inclusive, counts = self.sample_batch(rng, 1)
        return self.spectra.replace_counts(inclusive[0], counts[0])


def _prediction(counts, edges, masks, config) -> np.ndarray | None:
    """The first valid fit over `masks` (most excluded first) with enough events, or None."""
    need = config.min_events_per_parameter * config.n_params
    for mask in masks:
        if counts[mask].sum() < need or np.sum(counts[mask] > 0) < config.n_params + 1:
            continue
        fit = fit_dijet_batch(counts[None], edges, mask, config.n_params, config.sqrt_s)
        if fit.valid[0]:
            return fit.predict()[0]
    return None


def background_only_model(
    spectra: SelectedSpectra,
    config: ScanConfig,
    observed: ScanResult | None = None,
    mask_significance: float = 3.0,
) -> NullModel:
    """Fit the observed spectra, excesses masked, into the background-only hypothesis.

    Cells the observed scan could not test are not tested in the pseudo-experiments either.
    A spectrum whose masked fit fails is fitted on its own sidebands only; failing that (a
    cell that is not tested), its mean is the inclusive one times its overall pass fraction
    (counted in `n_fallbacks`). With a reference calibration the selected mean is the
    inclusive null times the reference efficiency (and its measured mismodelling ratio,
    `analysis.stats.mismodelling`) wherever the reference has events.
    """
    observed = scan_spectra(spectra, config) if observed is None else observed
    z = np.where(observed.fit_valid, observed.significances, -np.inf)
    masked = tuple(int(w) for w in np.flatnonzero(z.max(axis=1) >= mask_significance))
    excluded = np.zeros(spectra.edges.size - 1, bool)
    for w in masked:
        excluded |= spectra.bins(w).sr
    inclusive_fit = fit_dijet(
        spectra.inclusive, spectra.edges, ~excluded, config.n_params, config.sqrt_s
    )
    if not inclusive_fit.valid:
        inclusive_fit = fit_dijet(
            spectra.inclusive, spectra.edges, None, config.n_params, config.sqrt_s
        )
    if not inclusive_fit.valid:
        raise RuntimeError(
            f"background fit of the inclusive spectrum failed: {inclusive_fit.message}"
        )
    inclusive_mean = inclusive_fit.predict()
    order = np.argsort(-spectra.efficiencies, kind="stable")
    pass_fraction = np.ones(spectra.counts.shape)
    fallbacks = 0
    for w in range(spectra.counts.shape[0]):
        fit_bins = spectra.bins(w).fit
        previous = inclusive_mean
        for e in order:
            mean = inclusive_mean
            if spectra.efficiencies[e] < 1.0:
                counts = spectra.counts[w, e]
                mean = _prediction(counts, spectra.edges, (fit_bins & ~excluded, fit_bins), config)
                if mean is None:
                    fallbacks += 1
                    mean = inclusive_mean * counts.sum() / spectra.inclusive.sum()
                if spectra.reference_efficiency is not None:
                    # the scan's calibrated background, mismodelling correction included
                    eff = spectra.reference_efficiency[w, e] * spectra.control(w, e)[0]
                    mean = np.where(np.isfinite(eff), inclusive_mean * eff, mean)
            pass_fraction[w, e] = np.clip(mean / previous, 0.0, 1.0)
            previous = np.maximum(mean, 1e-300)
    return NullModel(
        spectra,
        inclusive_mean,
        pass_fraction,
        order,
        observed.fit_valid.copy(),
        masked,
        fallbacks,
    )


def _test_cells(
    observed: np.ndarray,
    fit: BatchFit,
    enough: np.ndarray,
    in_sr: np.ndarray,
    signal_shape,
    efficiency=None,
    efficiency_error=None,
    control: tuple[float, float] = (1.0, 0.0),
) -> np.ndarray:
    """Signed local Z of a stack of cells sharing a window (NaN where not testable).

    `control` is the reference's (pass ratio, error) where no signal is expected
    (`analysis.stats.mismodelling`); it applies to a calibrated cell only.
    """
    signed = np.full(observed.shape[0], np.nan)
    nominal = fit.predict()[:, in_sr]
    up, down = fit.variations()
    up, down = up[..., in_sr], down[..., in_sr]
    relerr = None
    if efficiency is not None:
        eff, err = efficiency[in_sr], efficiency_error[in_sr]
        if not (np.all(np.isfinite(eff)) and np.all(np.isfinite(err))):
            return signed
        nominal, up, down = control_variation(nominal * eff, up * eff, down * eff, *control)
        relerr = np.divide(err, eff, out=np.zeros_like(eff), where=eff > 0)
    ok = fit.valid & enough & np.all(nominal > 0, axis=1)
    if not ok.any():
        return signed
    reference = np.maximum(1.0, np.sqrt(nominal[ok].sum(axis=1)))
    test = batch_discovery_significance(
        observed[ok][:, in_sr],
        reference[:, None] * signal_shape[in_sr],
        nominal[ok],
        up[ok],
        down[ok],
        relerr,
    )
    signed[ok] = test.signed_significance
    return signed


def pseudo_scan(
    spectra: SelectedSpectra,
    inclusive: np.ndarray,
    counts: np.ndarray,
    config: ScanConfig,
    tested: np.ndarray | None = None,
) -> np.ndarray:
    """Signed local Z (n, windows, efficiencies) of `scan_spectra` for n stacked spectra.

    `inclusive` is (n, bins) and `counts` (n, windows, efficiencies, bins) on the binning and
    selections of `spectra`; cells outside `tested` and cells `scan_spectra` would not test
    come back NaN. Each window's inclusive fit serves all its cells that need it.
    """
    n, n_w, n_e, _ = counts.shape
    tested = np.ones((n_w, n_e), bool) if tested is None else tested
    edges = spectra.edges
    need = config.min_events_per_parameter * config.n_params
    calibrated = spectra.reference_efficiency is not None
    signed = np.full((n, n_w, n_e), np.nan)
    for w in range(n_w):
        if not tested[w].any():
            continue
        in_sr, fit_bins = spectra.bins(w)
        shape = gaussian_signal(edges, spectra.windows[w].centre, config.resolution)
        inclusive_fit = None
        for e in range(n_e):
            if not tested[w, e]:
                continue
            selected = counts[:, w, e]
            if calibrated or spectra.efficiencies[e] >= 1.0:
                if inclusive_fit is None:
                    inclusive_fit = fit_dijet_batch(
                        inclusive, edges, fit_bins, config.n_params, config.sqrt_s
                    )
                    inclusive_enough = inclusive[:, fit_bins].sum(axis=1) >= need
                fit, enough = inclusive_fit, inclusive_enough
            else:
                fit = fit_dijet_batch(selected, edges, fit_bins, config.n_params, config.sqrt_s)
                enough = selected[:, fit_bins].sum(axis=1) >= need
            calibration = (
                (
                    spectra.reference_efficiency[w, e],
                    spectra.reference_efficiency_error[w, e],
                    spectra.control(w, e),
                )
                if calibrated
                else ()
            )
            signed[:, w, e] = _test_cells(selected, fit, enough, in_sr, shape, *calibration)
    return signed
