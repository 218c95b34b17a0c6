"""Look-elsewhere effect: global significance from background-only pseudo-experiments.

The null is background-only by construction: every selected spectrum is refitted on its
window's sidebands with the signal regions of all windows holding an excess (local Z >=
`mask_significance` at any efficiency) masked as well, and the inclusive spectrum likewise,
so an observed signal shapes neither its own window's null nor its neighbours'. A
pseudo-experiment draws the inclusive spectrum from a Poisson around the inclusive fit and
thins each window's selections binomially, loosest to tightest, with the fitted pass
fractions: that keeps the nesting of the efficiencies and the shared inclusive spectrum;
correlations between windows' selections are not modelled, which can only add effective
trials (a conservative global p-value). Each pseudo-experiment redoes the scan of the cells
the observed scan tested (fit, model, q0), vectorised over pseudo-experiments, with the same
likelihoods as `analysis.stats.scan.scan_spectra`.

Beyond the reach of the pseudo-experiments the global p-value is extrapolated (Gross and
Vitells, arXiv:1005.1891; Vitells and Gross, arXiv:1105.4355): the mean number of
excursions of the local significance map above a threshold z, counted as connected cells on
the window x efficiency grid, is fitted at low thresholds by Phi(-z) + (N1 + N2 z)
exp(-z^2 / 2) and evaluated at the observed maximum; its uncertainty comes from a bootstrap
over the pseudo-experiments. That expectation bounds the global p-value from above, and so
does the Bonferroni bound n_cells * Phi(-z); the smaller one is reported, named.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special, stats

from analysis.executor import InProcessExecutor
from analysis.stats.dijet import BatchFit, fit_dijet, fit_dijet_batch
from analysis.stats.inference import batch_discovery_significance
from analysis.stats.models import gaussian_signal
from analysis.stats.scan import ScanConfig, ScanResult, scan_spectra
from analysis.stats.selection import SelectedSpectra

__all__ = [
    "GlobalExtrapolation",
    "LookElsewhereResult",
    "NullModel",
    "background_only_model",
    "excursion_counts",
    "extrapolate_global",
    "look_elsewhere",
    "miscalibrated_cells",
    "pseudo_scan",
]

#: thresholds (local Z) at which excursions are counted for the extrapolation
EXTRAPOLATION_THRESHOLDS = (0.5, 1.0, 1.5, 2.0)
#: exceedances the pseudo-experiments need before their count is quoted instead of extrapolated
MIN_EXCEEDING = 10
#: a cell whose null local Z exceeds TAIL_Z this much more often than Phi(-TAIL_Z) predicts
#: (binomial tail probability below TAIL_ALPHA) has no trustworthy asymptotic local Z
TAIL_Z, TAIL_ALPHA = 3.0, 1e-4


def miscalibrated_cells(maps: np.ndarray, tested: np.ndarray) -> np.ndarray:
    """(windows, efficiencies) mask of tested cells whose null local Z has a heavy upper tail.

    A sparse or sculpted selection can make a sideband fit so loose that background-only
    pseudo-experiments put 6-15 sigma "excesses" into its signal region; such a cell's
    asymptotic local Z means nothing, and it would dominate every maximum.
    """
    finite = np.isfinite(maps)
    n = finite.sum(axis=0)
    k = np.sum(np.where(finite, maps, -np.inf) > TAIL_Z, axis=0)
    p_tail = stats.binom.sf(k - 1, n, special.ndtr(-TAIL_Z))
    return tested & (n > 0) & (p_tail < TAIL_ALPHA)


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
    inclusive null times the reference efficiency wherever the reference has events.
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
                    eff = spectra.reference_efficiency[w, e]
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
) -> np.ndarray:
    """Signed local Z of a stack of cells sharing a window (NaN where not testable)."""
    signed = np.full(observed.shape[0], np.nan)
    nominal = fit.predict()[:, in_sr]
    up, down = fit.variations()
    up, down = up[..., in_sr], down[..., in_sr]
    relerr = None
    if efficiency is not None:
        eff, err = efficiency[in_sr], efficiency_error[in_sr]
        if not (np.all(np.isfinite(eff)) and np.all(np.isfinite(err))):
            return signed
        nominal, up, down = nominal * eff, up * eff, down * eff
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
                (spectra.reference_efficiency[w, e], spectra.reference_efficiency_error[w, e])
                if calibrated
                else (None, None)
            )
            signed[:, w, e] = _test_cells(selected, fit, enough, in_sr, shape, *calibration)
    return signed


def excursion_counts(maps: np.ndarray, thresholds) -> np.ndarray:
    """Connected excursions {Z > u} of each (windows, efficiencies) map, (n_maps, n_thresholds).

    Neighbouring windows at one efficiency and neighbouring efficiencies of one window are
    connected; untested cells (NaN) lie below every threshold.
    """
    maps = np.nan_to_num(np.asarray(maps, dtype=float), nan=-np.inf)
    out = np.zeros((maps.shape[0], len(thresholds)), int)
    for k, u in enumerate(thresholds):
        above = maps > u
        for i in np.flatnonzero(above.any(axis=(1, 2))):
            out[i, k] = ndimage.label(above[i])[1]
    return out


@dataclass(frozen=True)
class GlobalExtrapolation:
    """Upcrossing (Euler characteristic) extrapolation of the global p-value to local Z `z`."""

    z: float
    p_value: float
    p_value_error: float
    significance: float
    significance_error: float
    n1: float
    n2: float
    bonferroni_p_value: float
    method: str


def _gv_coefficients(mean_counts: np.ndarray, thresholds: np.ndarray, weights) -> np.ndarray:
    """Least-squares (N1, N2) of E[N(u)] - Phi(-u) = (N1 + N2 u) exp(-u^2 / 2)."""
    basis = np.exp(-0.5 * thresholds**2)
    design = np.stack([basis, thresholds * basis], axis=1) * weights[:, None]
    target = (mean_counts - special.ndtr(-thresholds)) * weights
    return np.linalg.lstsq(design, target.T, rcond=None)[0]


def _gv_p(z: float, coefficients: np.ndarray) -> np.ndarray:
    return special.ndtr(-z) + (coefficients[0] + coefficients[1] * z) * np.exp(-0.5 * z**2)


def extrapolate_global(
    maps: np.ndarray,
    z: float,
    n_cells: int,
    thresholds=EXTRAPOLATION_THRESHOLDS,
    n_bootstrap: int = 200,
    random_state: int | np.random.SeedSequence | None = None,
) -> GlobalExtrapolation:
    """Global p-value of local significance `z` from the excursions of null `maps`.

    `maps` are (n_pseudo, windows, efficiencies) signed local Z of background-only
    pseudo-experiments. The result is the smaller of the Gross-Vitells expectation and the
    Bonferroni bound `n_cells` Phi(-z), named in `method`; a bootstrap over the maps gives the
    Gross-Vitells uncertainty (zero for the Bonferroni bound, which is exact as a bound).
    """
    thresholds = np.asarray(thresholds, dtype=float)
    counts = excursion_counts(maps, thresholds).astype(float)
    n = counts.shape[0]
    mean = counts.mean(axis=0)
    # Poisson-like weights: the spread of each mean count.
    weights = 1.0 / np.maximum(counts.std(axis=0) / np.sqrt(n), 1e-3)
    coefficients = _gv_coefficients(mean, thresholds, weights)
    p_gv = float(_gv_p(z, coefficients))
    rng = np.random.default_rng(random_state)
    draws = rng.integers(0, n, (n_bootstrap, n))
    boot = np.array([_gv_coefficients(counts[d].mean(axis=0), thresholds, weights) for d in draws])
    p_boot = _gv_p(z, boot.T)
    p_bonferroni = float(min(1.0, n_cells * special.ndtr(-z)))
    if p_bonferroni < p_gv:
        p, error, method = p_bonferroni, 0.0, "bonferroni"
    else:
        p, error, method = p_gv, float(np.std(p_boot)), "gross-vitells"
    # An expectation above 1 bounds nothing: the p-value is then 1 (global Z -> -inf).
    p = float(np.clip(p, 1e-300, 1.0))
    z_global = float(stats.norm.isf(p))
    z_boot = stats.norm.isf(np.clip(p_boot, 1e-300, 1.0 - 1e-12))
    z_error = float(np.std(z_boot)) if error else 0.0
    return GlobalExtrapolation(
        z=float(z),
        p_value=p,
        p_value_error=error,
        significance=z_global,
        significance_error=z_error,
        n1=float(coefficients[0]),
        n2=float(coefficients[1]),
        bonferroni_p_value=p_bonferroni,
        method=method,
    )


@dataclass(frozen=True, eq=False)
class _Batch:
    null: NullModel
    config: ScanConfig
    seed: np.random.SeedSequence
    size: int


@dataclass(frozen=True)
class _BatchOutcome:
    maps: np.ndarray
    cpu_seconds: float


def _run_batch(batch: _Batch) -> _BatchOutcome:
    cpu_start = time.process_time()
    rng = np.random.default_rng(batch.seed)
    inclusive, counts = batch.null.sample_batch(rng, batch.size)
    maps = pseudo_scan(batch.null.spectra, inclusive, counts, batch.config, batch.null.tested)
    return _BatchOutcome(maps, time.process_time() - cpu_start)


@dataclass(frozen=True, eq=False)
class LookElsewhereResult:
    """Global significance of the largest local excess, and how it was obtained (`method`).

    `method` is "pseudo-experiments" when at least MIN_EXCEEDING pseudo-experiments reach
    the observed excess (then `global_p_value` is their fraction, with a binomial error);
    otherwise the upcrossing extrapolation, "gross-vitells", or the Bonferroni bound,
    "bonferroni" (a bound: `is_limit`, the global significance is a lower limit).
    `n_pseudo` counts pseudo-experiments with at least one tested cell; `toy_p_value` is the
    plain fraction (the upper bound 1/n_pseudo when none exceeds). Cells whose null local Z
    the pseudo-experiments show to be heavy-tailed (`excluded_cells`, see
    `miscalibrated_cells`) are left out of the observed and the pseudo maxima alike;
    `best_cell` is the (window, efficiency) of `observed_significance`.
    """

    observed_significance: float
    local_p_value: float
    n_pseudo: int
    n_exceeding: int
    toy_p_value: float
    global_p_value: float
    global_p_value_error: float
    global_significance: float
    global_significance_error: float
    method: str
    is_limit: bool
    trials_factor: float
    trials_factor_error: float
    extrapolation: GlobalExtrapolation
    n_tested_cells: int
    best_cell: tuple[int, int]
    excluded_cells: tuple[tuple[int, int], ...]
    masked_windows: tuple[int, ...]
    max_significances: np.ndarray
    local_significances: np.ndarray
    failed_fit_fraction: float
    n_fits: int
    cpu_seconds: float
    n_null_fallbacks: int

    def to_dict(self) -> dict:
        """JSON-compatible summary (without the per-pseudo-experiment arrays)."""

        def clean(value):
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, tuple | list):
                return [clean(v) for v in value]
            return value if not isinstance(value, float) or np.isfinite(value) else None

        skip = ("max_significances", "local_significances")
        return clean(
            {
                k: vars(v) if isinstance(v, GlobalExtrapolation) else v
                for k, v in vars(self).items()
                if k not in skip
            }
        )


def look_elsewhere(
    spectra: SelectedSpectra,
    config: ScanConfig | None = None,
    n_pseudo: int = 1000,
    executor=None,
    random_state: int | np.random.SeedSequence | None = None,
    batch_size: int = 100,
    observed: ScanResult | None = None,
    mask_significance: float = 3.0,
) -> LookElsewhereResult:
    """Global p-value of the observed max local Z against background-only pseudo-scans.

    Pseudo-experiments run in batches through `executor` (default in process), each batch
    with its own seed from `SeedSequence.spawn`, so results do not depend on the executor.
    """
    config = ScanConfig() if config is None else config
    if n_pseudo < 1 or batch_size < 1:
        raise ValueError(f"n_pseudo and batch_size must be positive, got {n_pseudo}, {batch_size}")
    observed = scan_spectra(spectra, config) if observed is None else observed
    if observed.config != config:
        raise ValueError(f"the observed scan used {observed.config}, not `config` = {config}")
    z_obs = observed.max_significance
    if not np.isfinite(z_obs):
        raise ValueError("every fit of the observed scan failed: no local significance to test")
    null = background_only_model(spectra, config, observed, mask_significance)
    seed = (
        random_state
        if isinstance(random_state, np.random.SeedSequence)
        else np.random.SeedSequence(random_state)
    )
    sizes = [batch_size] * (n_pseudo // batch_size) + (
        [n_pseudo % batch_size] if n_pseudo % batch_size else []
    )
    batch_seeds = seed.spawn(len(sizes) + 1)
    batches = [_Batch(null, config, s, n) for s, n in zip(batch_seeds[:-1], sizes, strict=True)]
    outcomes = (executor or InProcessExecutor(desc="pseudo-experiments")).map(_run_batch, batches)
    maps = np.concatenate([o.maps for o in outcomes])
    excluded = miscalibrated_cells(maps, null.tested)
    use = null.tested & ~excluded
    z_map = np.where(use & observed.fit_valid, observed.significances, -np.inf)
    if not np.isfinite(z_map.max()):
        raise RuntimeError("no tested cell has a calibrated local significance")
    best = tuple(int(i) for i in np.unravel_index(np.argmax(z_map), z_map.shape))
    z_obs = float(z_map[best])
    tested = maps[:, use]
    n_fits = tested.size
    finite = np.isfinite(tested)
    maxima = np.where(finite.any(axis=1), np.nanmax(np.where(finite, tested, -np.inf), 1), np.nan)
    maxima = np.maximum(maxima, 0.0)
    # A pseudo-experiment whose fits all failed has no maximum: it is left out, not counted low.
    n_used = int(np.isfinite(maxima).sum())
    if n_used == 0:
        raise RuntimeError("every fit failed in every pseudo-experiment")
    n_cells = int(use.sum())
    n_exceeding = int(np.sum(maxima >= z_obs))
    toy_p = max(n_exceeding, 1) / n_used
    p_local = float(stats.norm.sf(z_obs))
    extrapolation = extrapolate_global(
        np.where(use, maps, np.nan)[np.isfinite(maxima)],
        z_obs,
        n_cells,
        random_state=batch_seeds[-1],
    )
    if n_exceeding >= MIN_EXCEEDING:
        method, is_limit = "pseudo-experiments", False
        p_global = toy_p
        p_error = float(np.sqrt(p_global * (1 - p_global) / n_used))
        z_global = float(stats.norm.isf(p_global))
        density = float(stats.norm.pdf(z_global))
        z_error = p_error / density if density > 0 else float("nan")
    else:
        method, is_limit = extrapolation.method, extrapolation.method == "bonferroni"
        p_global, p_error = extrapolation.p_value, extrapolation.p_value_error
        z_global, z_error = extrapolation.significance, extrapolation.significance_error
    return LookElsewhereResult(
        observed_significance=z_obs,
        local_p_value=p_local,
        n_pseudo=n_used,
        n_exceeding=n_exceeding,
        toy_p_value=toy_p,
        global_p_value=p_global,
        global_p_value_error=p_error,
        global_significance=z_global,
        global_significance_error=z_error,
        method=method,
        is_limit=is_limit,
        trials_factor=p_global / p_local if p_local > 0 else float("inf"),
        trials_factor_error=p_error / p_local if p_local > 0 else float("inf"),
        extrapolation=extrapolation,
        n_tested_cells=n_cells,
        best_cell=best,
        excluded_cells=tuple((int(w), int(e)) for w, e in np.argwhere(excluded)),
        masked_windows=null.masked_windows,
        max_significances=maxima,
        local_significances=maps,
        failed_fit_fraction=float(1.0 - finite.mean()),
        n_fits=n_fits,
        cpu_seconds=sum(o.cpu_seconds for o in outcomes),
        n_null_fallbacks=null.n_fallbacks,
    )
