"""Window x selection-efficiency scans: local significance maps, per-cell background predictions,
the closure of a reference-calibrated background and a sculpting check."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import stats

from analysis.defaults import DEFAULT_EFFICIENCIES
from analysis.regions import Window
from analysis.stats.closure import ClosureOutcome, reference_closure
from analysis.stats.dijet import SQRT_S, FitResult, fit_dijet, fixed_width_edges
from analysis.stats.inference import (
    DiscoveryResult,
    discovery_significance,
    fast_discovery_significance,
)
from analysis.stats.models import CalibratedFit, build_window_model
from analysis.stats.selection import SelectedSpectra, finite_events, select_spectra

__all__ = [
    "ScanConfig",
    "ScanResult",
    "SculptingResult",
    "constrained_fit",
    "efficiency_flatness",
    "scan",
    "scan_spectra",
    "sculpting_check",
    "window_fit",
]

METHODS = ("fast", "pyhf")


@dataclass(frozen=True)
class ScanConfig:
    """How each cell is analysed: dijet order, signal resolution, q0 method ("fast" or "pyhf").

    `efficiencies` are what `scan` selects; `scan_spectra` uses those of its spectra. A cell
    whose fit bins hold fewer than `min_events_per_parameter` selected events per parameter of
    the dijet function is not tested: a fit that free can put a bump or a hole anywhere.
    """

    efficiencies: tuple[float, ...] = DEFAULT_EFFICIENCIES
    n_params: int = 4
    resolution: float = 0.05
    sqrt_s: float = SQRT_S
    method: str = "fast"
    sculpting_alpha: float = 1e-3
    min_events_per_parameter: int = 10


@dataclass(frozen=True)
class SculptingResult:
    """Flatness test of the selection efficiency versus mjj (chi2 against a constant)."""

    efficiency: np.ndarray
    efficiency_error: np.ndarray
    mean_efficiency: float
    chi2: float
    ndof: int
    p_value: float
    sculpted: bool


def _groups(inclusive: np.ndarray, eps: float, minimum: float = 5.0) -> np.ndarray:
    """Group labels merging neighbouring bins until >= `minimum` expected passing and failing."""
    labels, group, total = np.zeros(inclusive.size, int), 0, 0.0
    for i, n in enumerate(inclusive):
        labels[i] = group
        total += n
        if min(total * eps, total * (1 - eps)) >= minimum:
            group, total = group + 1, 0.0
    if total > 0 and group > 0:
        labels[labels == group] = group - 1  # an underfilled tail joins the previous group
    return labels


def efficiency_flatness(
    selected: np.ndarray,
    inclusive: np.ndarray,
    use: np.ndarray | None = None,
    alpha: float = 1e-3,
) -> SculptingResult:
    """Chi2 test that selected/inclusive counts are flat in mjj over the bins in `use`."""
    selected = np.asarray(selected, dtype=float)
    inclusive = np.asarray(inclusive, dtype=float)
    if selected.shape != inclusive.shape or selected.ndim != 1:
        raise ValueError(
            f"selected and inclusive must be 1-D, same shape: {selected.shape}, {inclusive.shape}"
        )
    for name, values in (("selected", selected), ("inclusive", inclusive)):
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"{name} counts contain {int(np.sum(~np.isfinite(values)))} NaN/inf bins"
            )
    if np.any(selected > inclusive) or np.any(selected < 0):
        raise ValueError("selected counts must lie between 0 and the inclusive counts in every bin")
    use = (np.ones(selected.size, bool) if use is None else np.asarray(use, bool)) & (inclusive > 0)
    if not use.any():
        raise ValueError("no non-empty bins to test the efficiency flatness")
    efficiency = np.divide(
        selected, inclusive, out=np.full(selected.size, np.nan), where=inclusive > 0
    )
    eps = selected[use].sum() / inclusive[use].sum()
    error = np.sqrt(eps * (1 - eps) / np.where(inclusive > 0, inclusive, np.nan))
    labels = _groups(inclusive[use], eps)
    k = np.bincount(labels, selected[use])
    n = np.bincount(labels, inclusive[use])
    ndof = k.size - 1
    if ndof < 1 or eps in (0.0, 1.0):
        chi2, p_value = 0.0, 1.0
    else:
        chi2 = float(np.sum((k - eps * n) ** 2 / (n * eps * (1 - eps))))
        p_value = float(stats.chi2.sf(chi2, ndof))
    return SculptingResult(efficiency, error, float(eps), chi2, ndof, p_value, p_value < alpha)


def sculpting_check(
    mjj: np.ndarray, scores: np.ndarray, edges: np.ndarray, efficiency: float, alpha: float = 1e-3
) -> SculptingResult:
    """Cut background-like events at the global `efficiency` quantile of `scores`; test flatness."""
    mjj, scores = finite_events(mjj, np.asarray(scores, dtype=float)[None])
    inclusive, _ = np.histogram(mjj, bins=edges)
    threshold = np.quantile(scores[0], 1.0 - efficiency)
    selected, _ = np.histogram(mjj[scores[0] > threshold], bins=edges)
    return efficiency_flatness(selected, inclusive, alpha=alpha)


@dataclass(frozen=True, eq=False)
class ScanResult:
    """Local significance map, arrays shaped (n_windows, n_efficiencies); NaN where a fit failed.

    `expected` (windows, efficiencies, bins) is each cell's background per bin as the scan
    models it: NaN outside the window's fit range, where the fit failed and, for a
    reference-calibrated selection, in the sidebands (only the signal region is modelled).
    `closure` holds per window the reference's closure check when the selection is
    calibrated; a window that fails it has no valid cell. `excluded` marks cells left out
    afterwards (`excluding`), e.g. those whose null local Z the look-elsewhere study found
    heavy-tailed; they are not valid either.
    """

    windows: tuple[Window, ...]
    efficiencies: np.ndarray
    thresholds: np.ndarray
    p_values: np.ndarray
    significances: np.ndarray
    signed_significances: np.ndarray
    signal_yields: np.ndarray
    observed_sr: np.ndarray
    background_sr: np.ndarray
    fit_valid: np.ndarray
    sculpting_p_values: np.ndarray
    sculpted: np.ndarray
    config: ScanConfig
    fit_seconds: float
    expected: np.ndarray
    closure: tuple[ClosureOutcome, ...] | None = None
    excluded: tuple[tuple[int, int], ...] = ()

    def excluding(self, cells: Sequence[Sequence[int]]) -> ScanResult:
        """The scan with the (window, efficiency) `cells` left out (no longer valid)."""
        cells = tuple((int(w), int(e)) for w, e in cells)
        valid = self.fit_valid.copy()
        for w, e in cells:
            valid[w, e] = False
        return dataclasses.replace(self, fit_valid=valid, excluded=self.excluded + cells)

    @property
    def max_significance(self) -> float:
        """Largest local significance over valid cells (NaN if every fit failed)."""
        valid = self.significances[self.fit_valid]
        return float(valid.max()) if valid.size else float("nan")

    @property
    def best(self) -> tuple[int, int]:
        """(window index, efficiency index) of the largest local significance."""
        masked = np.where(self.fit_valid, self.significances, -np.inf)
        return tuple(int(i) for i in np.unravel_index(np.argmax(masked), masked.shape))

    @property
    def failed_fraction(self) -> float:
        """Fraction of cells whose background fit failed."""
        return float(1.0 - self.fit_valid.mean())

    def to_dict(self) -> dict:
        """JSON-compatible summary (non-finite numbers become None)."""

        def clean(values: np.ndarray) -> list:
            return [[float(v) if np.isfinite(v) else None for v in row] for row in values]

        return {
            "config": dataclasses.asdict(self.config),
            "windows": [[w.sr_low, w.sr_high] for w in self.windows],
            "efficiencies": self.efficiencies.tolist(),
            "thresholds": clean(self.thresholds),
            "p_values": clean(self.p_values),
            "significances": clean(self.significances),
            "signed_significances": clean(self.signed_significances),
            "signal_yields": clean(self.signal_yields),
            "observed_sr": clean(self.observed_sr),
            "background_sr": clean(self.background_sr),
            "fit_valid": self.fit_valid.tolist(),
            "sculpting_p_values": clean(self.sculpting_p_values),
            "sculpted": self.sculpted.tolist(),
            "max_significance": self.max_significance,
            "best": {"window": self.best[0], "efficiency": self.best[1]},
            "failed_fraction": self.failed_fraction,
        }


def window_fit(
    counts: np.ndarray, edges: np.ndarray, window: Window, config: ScanConfig
) -> FitResult:
    """Background fit of one cell: the dijet function on the window's sidebands, SR masked.

    Raises ValueError when the window has no sideband bin on one side of its signal region (a
    window at the edge of the data): the fit would extrapolate into the SR, not interpolate.
    """
    bins = window.bins(edges)
    fit, sr = np.flatnonzero(bins.fit), np.flatnonzero(bins.sr)
    if sr.size:
        below, above = np.any(fit < sr[0]), np.any(fit > sr[-1])
        if not (below and above):
            raise ValueError(
                f"no sideband bin {'above' if below else 'below'} the signal region "
                f"{window.sr_low:g}-{window.sr_high:g} TeV within the histogram: the fit would "
                "extrapolate into it"
            )
    return constrained_fit(counts, edges, bins.fit, config)


def constrained_fit(
    counts: np.ndarray, edges: np.ndarray, fit_bins: np.ndarray, config: ScanConfig
) -> FitResult:
    """The dijet fit of `fit_bins`, refused (ValueError) with too few events to constrain it."""
    n_events = float(np.sum(np.asarray(counts)[fit_bins]))
    need = config.min_events_per_parameter * config.n_params
    if n_events < need:
        raise ValueError(
            f"{n_events:.0f} events in the fit bins cannot constrain a {config.n_params}-parameter "
            f"fit (need {need})"
        )
    return fit_dijet(counts, edges, fit_bins, config.n_params, config.sqrt_s)


def cell_background(
    spectra: SelectedSpectra, w: int, e: int, config: ScanConfig
) -> FitResult | CalibratedFit:
    """The background model of cell (w, e): its sideband fit, or the calibrated inclusive fit.

    Raises ValueError when the fit is refused or does not converge.
    """
    calibrated = spectra.reference_efficiency is not None
    counts = spectra.inclusive if calibrated else spectra.counts[w, e]
    fit = window_fit(counts, spectra.edges, spectra.windows[w], config)
    if not fit.valid:
        raise ValueError(fit.message)
    if not calibrated:
        return fit
    return CalibratedFit(
        fit,
        spectra.reference_efficiency[w, e],
        spectra.reference_efficiency_error[w, e],
        *spectra.control(w, e),
    )


class _Cell(NamedTuple):
    """What the scan learns of one cell."""

    expected: np.ndarray
    test: DiscoveryResult | None
    background_sr: float
    fit_seconds: float


def _cell(spectra: SelectedSpectra, w: int, e: int, config: ScanConfig) -> _Cell:
    """Fit, model and test one cell."""
    bins = spectra.bins(w)
    expected = np.full(spectra.edges.size - 1, np.nan)
    try:
        background = cell_background(spectra, w, e, config)
    except ValueError:
        return _Cell(expected, None, np.nan, 0.0)
    if isinstance(background, CalibratedFit):
        fit, shown = background.fit, bins.sr
        prediction = fit.predict() * background.efficiency * background.control_ratio
    else:
        fit, shown = background, bins.fit_range
        prediction = fit.predict()
    expected[shown] = prediction[shown]
    try:
        model = build_window_model(
            spectra.counts[w, e],
            spectra.edges,
            spectra.windows[w],
            background,
            resolution=config.resolution,
        )
    except ValueError:
        return _Cell(expected, None, np.nan, fit.seconds)
    test = fast_discovery_significance if config.method == "fast" else discovery_significance
    return _Cell(expected, test(model), float(model.background.sum()), fit.seconds)


def scan_spectra(
    spectra: SelectedSpectra, config: ScanConfig | None = None, check_sculpting: bool = False
) -> ScanResult:
    """Fit and test every (window, efficiency) cell of `spectra`.

    With `check_sculpting`, each cell also tests that selected/inclusive is flat over the
    window's sidebands. A real signal leaking into the sidebands fails that test too, so it
    is meant for background-like references (simulation, generated samples).
    """
    config = ScanConfig() if config is None else config
    if config.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {config.method!r}")
    shape = spectra.counts.shape[:2]
    out = {k: np.full(shape, np.nan) for k in ("p", "z", "signed", "yield", "obs", "bkg", "sculpt")}
    valid = np.zeros(shape, bool)
    sculpted = np.zeros(shape, bool)
    expected = np.full(spectra.counts.shape, np.nan)
    seconds = 0.0
    for w in range(shape[0]):
        sideband = ~spectra.bins(w).sr
        for e in range(shape[1]):
            counts = spectra.counts[w, e]
            cell = _cell(spectra, w, e, config)
            seconds += cell.fit_seconds
            expected[w, e] = cell.expected
            out["obs"][w, e] = counts[~sideband].sum()
            if cell.test is not None:
                valid[w, e] = True
                out["p"][w, e], out["z"][w, e] = cell.test.p_value, cell.test.significance
                out["signed"][w, e] = cell.test.signed_significance
                out["yield"][w, e] = cell.test.signal_yield
                out["bkg"][w, e] = cell.background_sr
            if check_sculpting:
                flat = efficiency_flatness(
                    counts, spectra.inclusive, sideband, config.sculpting_alpha
                )
                out["sculpt"][w, e], sculpted[w, e] = flat.p_value, flat.sculpted
    closure = None
    if spectra.separations is not None:
        covered = [spectra.control_measured(w) for w in range(shape[0])]
        closure = reference_closure(
            spectra.separations, spectra.windows, out["obs"], out["bkg"], covered
        )
        # A window whose reference mismodelling is measured keeps its cells: the nuisance
        # covers the mismodelling that fails closure.
        valid &= np.array([c.passed or c.covered for c in closure])[:, None]
    return ScanResult(
        windows=spectra.windows,
        efficiencies=spectra.efficiencies,
        thresholds=spectra.thresholds,
        p_values=out["p"],
        significances=out["z"],
        signed_significances=out["signed"],
        signal_yields=out["yield"],
        observed_sr=out["obs"],
        background_sr=out["bkg"],
        fit_valid=valid,
        sculpting_p_values=out["sculpt"],
        sculpted=sculpted,
        config=config,
        fit_seconds=seconds,
        expected=expected,
        closure=closure,
    )


def scan(
    mjj: np.ndarray,
    scores: np.ndarray | Sequence[np.ndarray],
    windows: Sequence[Window | tuple[float, float]],
    edges: np.ndarray | None = None,
    config: ScanConfig | None = None,
    check_sculpting: bool = False,
) -> ScanResult:
    """Select, fit and test every window x efficiency (default bins: 0.1 TeV over the data)."""
    config = ScanConfig() if config is None else config
    if edges is None:
        finite = np.asarray(mjj, dtype=float)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            raise ValueError("no finite mjj values")
        edges = fixed_width_edges(finite.min(), finite.max())
    spectra = select_spectra(mjj, scores, windows, edges, config.efficiencies)
    return scan_spectra(spectra, config, check_sculpting)
