"""Look-elsewhere effect: global significance from background-only pseudo-experiments.

Each pseudo-experiment redoes the whole scan (every window x efficiency: fit, model, q0) on
spectra resampled from the background fits. The inclusive spectrum is drawn from a Poisson
around a fit of the observed inclusive spectrum; each window's selections are then thinned
binomially, loosest to tightest, with pass fractions from the sideband fits of the observed
selected spectra. That keeps the nesting of the efficiencies and the shared inclusive
spectrum; other correlations between windows' selections are not modelled, which can only
add effective trials (a conservative global p-value).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.executor import InProcessExecutor
from analysis.stats.dijet import fit_dijet
from analysis.stats.scan import ScanConfig, ScanResult, constrained_fit, scan_spectra
from analysis.stats.selection import SelectedSpectra

__all__ = ["LookElsewhereResult", "NullModel", "background_only_model", "look_elsewhere"]


@dataclass(frozen=True, eq=False)
class NullModel:
    """Background-only means: inclusive spectrum and conditional pass fractions per window."""

    spectra: SelectedSpectra
    inclusive_mean: np.ndarray
    pass_fraction: np.ndarray
    order: np.ndarray
    n_fallbacks: int

    def sample(self, rng: np.random.Generator) -> SelectedSpectra:
        """One background-only pseudo-experiment: nested Poisson/binomial spectra."""
        inclusive = rng.poisson(self.inclusive_mean).astype(float)
        counts = np.empty_like(self.pass_fraction)
        for w in range(counts.shape[0]):
            previous = inclusive
            for e in self.order:
                previous = rng.binomial(previous.astype(np.int64), self.pass_fraction[w, e])
                counts[w, e] = previous
        return self.spectra.replace_counts(inclusive, counts)


def _sideband_prediction(counts, edges, fit_bins, config) -> np.ndarray | None:
    try:
        fit = constrained_fit(counts, edges, fit_bins, config)
    except ValueError:
        return None
    return fit.predict() if fit.valid else None


def background_only_model(spectra: SelectedSpectra, config: ScanConfig) -> NullModel:
    """Fit the observed spectra to build the background-only hypothesis for pseudo-experiments.

    A selected spectrum whose sideband fit fails falls back to a flat efficiency times the
    inclusive fit (counted in `n_fallbacks`). With a reference calibration the selected mean is
    the inclusive fit times the reference efficiency wherever the reference has events.
    """
    inclusive_fit = fit_dijet(
        spectra.inclusive, spectra.edges, None, config.n_params, config.sqrt_s
    )
    if not inclusive_fit.valid:
        raise RuntimeError(
            f"background fit of the inclusive spectrum failed: {inclusive_fit.message}"
        )
    inclusive_mean = inclusive_fit.predict()
    centres = 0.5 * (spectra.edges[1:] + spectra.edges[:-1])
    order = np.argsort(-spectra.efficiencies, kind="stable")
    pass_fraction = np.ones(spectra.counts.shape)
    fallbacks = 0
    for w, (low, high, fit_low, fit_high) in enumerate(spectra.windows):
        fit_bins = (
            ~((centres >= low) & (centres < high)) & (centres >= fit_low) & (centres < fit_high)
        )
        previous = inclusive_mean
        for e in order:
            mean = inclusive_mean
            if spectra.efficiencies[e] < 1.0:
                mean = _sideband_prediction(spectra.counts[w, e], spectra.edges, fit_bins, config)
                if mean is None:
                    fallbacks += 1
                    mean = inclusive_mean * spectra.counts[w, e].sum() / spectra.inclusive.sum()
                if spectra.reference_efficiency is not None:
                    eff = spectra.reference_efficiency[w, e]
                    mean = np.where(np.isfinite(eff), inclusive_mean * eff, mean)
            pass_fraction[w, e] = np.clip(mean / previous, 0.0, 1.0)
            previous = np.maximum(mean, 1e-300)
    return NullModel(spectra, inclusive_mean, pass_fraction, order, fallbacks)


@dataclass(frozen=True, eq=False)
class _Batch:
    null: NullModel
    config: ScanConfig
    seed: np.random.SeedSequence
    size: int


@dataclass(frozen=True)
class _BatchOutcome:
    max_significances: np.ndarray
    n_failed: int
    n_fits: int
    fit_seconds: float
    cpu_seconds: float


def _run_batch(batch: _Batch) -> _BatchOutcome:
    cpu_start = time.process_time()
    rng = np.random.default_rng(batch.seed)
    maxima, failed, fits, seconds = [], 0, 0, 0.0
    for _ in range(batch.size):
        result = scan_spectra(batch.null.sample(rng), batch.config, check_sculpting=False)
        maxima.append(result.max_significance)
        failed += int((~result.fit_valid).sum())
        fits += result.fit_valid.size
        seconds += result.fit_seconds
    cpu = time.process_time() - cpu_start
    return _BatchOutcome(np.asarray(maxima), failed, fits, seconds, cpu)


@dataclass(frozen=True, eq=False)
class LookElsewhereResult:
    """Global significance of the largest local excess.

    `n_pseudo` counts the pseudo-experiments with at least one valid fit. When none of them
    reaches the observed excess (`is_limit`), `global_p_value` is the upper bound 1/n_pseudo,
    `global_significance` a lower limit and `trials_factor` an upper bound.
    """

    observed_significance: float
    local_p_value: float
    n_pseudo: int
    n_exceeding: int
    global_p_value: float
    global_p_value_error: float
    global_significance: float
    is_limit: bool
    trials_factor: float
    trials_factor_error: float
    max_significances: np.ndarray
    failed_fit_fraction: float
    n_fits: int
    fit_seconds: float
    cpu_seconds: float
    n_null_fallbacks: int

    def to_dict(self) -> dict:
        """JSON-compatible summary (without the per-pseudo-experiment maxima)."""
        return {
            k: (v if not isinstance(v, float) or np.isfinite(v) else None)
            for k, v in vars(self).items()
            if k != "max_significances"
        }


def look_elsewhere(
    spectra: SelectedSpectra,
    config: ScanConfig | None = None,
    n_pseudo: int = 1000,
    executor=None,
    random_state: int | np.random.SeedSequence | None = None,
    batch_size: int = 25,
    observed: ScanResult | None = None,
) -> LookElsewhereResult:
    """Global p-value: fraction of background-only pseudo-scans whose max local Z >= observed.

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
    null = background_only_model(spectra, config)
    seed = (
        random_state
        if isinstance(random_state, np.random.SeedSequence)
        else np.random.SeedSequence(random_state)
    )
    sizes = [batch_size] * (n_pseudo // batch_size) + (
        [n_pseudo % batch_size] if n_pseudo % batch_size else []
    )
    batches = [
        _Batch(null, config, s, n) for s, n in zip(seed.spawn(len(sizes)), sizes, strict=True)
    ]
    outcomes = (executor or InProcessExecutor(desc="pseudo-experiments")).map(_run_batch, batches)
    maxima = np.concatenate([o.max_significances for o in outcomes])
    n_fits = sum(o.n_fits for o in outcomes)
    # A pseudo-experiment whose fits all failed has no maximum: it is left out, not counted low.
    n_used = int(np.isfinite(maxima).sum())
    if n_used == 0:
        raise RuntimeError("every fit failed in every pseudo-experiment")
    n_exceeding = int(np.sum(maxima >= z_obs))
    is_limit = n_exceeding == 0
    p_global = max(n_exceeding, 1) / n_used
    p_error = float(np.sqrt(p_global * (1 - p_global) / n_used))
    p_local = float(stats.norm.sf(z_obs))
    return LookElsewhereResult(
        observed_significance=z_obs,
        local_p_value=p_local,
        n_pseudo=n_used,
        n_exceeding=n_exceeding,
        global_p_value=p_global,
        global_p_value_error=p_error,
        global_significance=float(stats.norm.isf(p_global)),
        is_limit=is_limit,
        trials_factor=p_global / p_local,
        trials_factor_error=p_error / p_local,
        max_significances=maxima,
        failed_fit_fraction=sum(o.n_failed for o in outcomes) / n_fits,
        n_fits=n_fits,
        fit_seconds=sum(o.fit_seconds for o in outcomes),
        cpu_seconds=sum(o.cpu_seconds for o in outcomes),
        n_null_fallbacks=null.n_fallbacks,
    )
