"""Look-elsewhere effect: global significance from background-only pseudo-experiments.

Pseudo-experiments of the background-only hypothesis (`analysis.stats.null`) are scanned as
the data were; the global p-value is the fraction whose largest local significance reaches
the observed one (pyBumpHunter's definition). Beyond their reach it is extrapolated from
upcrossings or bounded (`analysis.stats.upcrossings`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from analysis.executor import InProcessExecutor
from analysis.stats.null import NullModel, background_only_model, pseudo_scan
from analysis.stats.scan import ScanConfig, ScanResult, scan_spectra
from analysis.stats.selection import SelectedSpectra
from analysis.stats.upcrossings import GlobalExtrapolation, extrapolate_global

__all__ = [
    "LookElsewhereResult",
    "look_elsewhere",
    "miscalibrated_cells",
]

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
