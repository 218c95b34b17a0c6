"""Bias tests of the signal-yield fit and the F-test choice of the dijet function's order.

Per window (as the CMS CASE search does): the dijet order the data's sidebands need is chosen
by a Fisher F-test among 3, 4 and 5 parameters; background-only pseudo-data are drawn from
that fit, signal of 0, 2 and 5 sigma (sigma: the median fitted yield uncertainty without
signal) is injected with the scan's Gaussian shape, and every pseudo-data set is fitted as the
scan fits it (sideband dijet fit with the scan's order, pyhf likelihood in the signal region).
The pull (fitted - injected) / error should have mean 0 and width 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from analysis.regions import Window
from analysis.stats.dijet import ftest_select
from analysis.stats.dijet_batch import fit_dijet_batch
from analysis.stats.inference import batch_discovery_significance
from analysis.stats.models import gaussian_signal
from analysis.stats.scan import ScanConfig
from analysis.stats.selection import SelectedSpectra

__all__ = ["BiasResult", "InjectionPulls", "bias_test", "fit_signal_yields"]

INJECTIONS = (0.0, 2.0, 5.0)
#: tolerances of the CASE bias test: |mean pull| and |width - 1|
MEAN_TOLERANCE, WIDTH_TOLERANCE = 0.1, 0.1


@dataclass(frozen=True)
class InjectionPulls:
    """Pulls of the fitted signal yield at one injected strength (in sigma and in events)."""

    injected_sigma: float
    injected_events: float
    n_toys: int
    mean_pull: float
    mean_pull_error: float
    width: float
    width_error: float
    passed: bool


@dataclass(frozen=True)
class BiasResult:
    """F-test choice and injection pulls of one window at one selection efficiency."""

    window: int
    sr_low: float
    sr_high: float
    efficiency: float
    ftest_n_params: int
    ftest_p_values: tuple[float, ...]
    fit_n_params: int
    sigma_events: float
    injections: tuple[InjectionPulls, ...]

    @property
    def passed(self) -> bool:
        """Every injection within the tolerances."""
        return all(i.passed for i in self.injections)

    def to_dict(self) -> dict:
        """JSON-compatible record."""
        out = {k: v for k, v in vars(self).items() if k != "injections"}
        out["ftest_p_values"] = list(self.ftest_p_values)
        out["injections"] = [vars(i) for i in self.injections]
        out["passed"] = self.passed
        return out


def fit_signal_yields(
    counts: np.ndarray, edges: np.ndarray, window: Window, config: ScanConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Fitted signal yield (events of the full Gaussian shape) and its error for stacked counts."""
    in_sr, fit_bins = window.bins(edges)
    fit = fit_dijet_batch(counts, edges, fit_bins, config.n_params, config.sqrt_s)
    shape = gaussian_signal(edges, window.centre, config.resolution)[in_sr]
    nominal = fit.predict()[:, in_sr]
    up, down = (v[..., in_sr] for v in fit.variations())
    test = batch_discovery_significance(
        counts[:, in_sr], np.broadcast_to(shape, nominal.shape), nominal, up, down
    )
    ok = fit.valid
    return np.where(ok, test.mu_hat, np.nan), np.where(ok, test.mu_error, np.nan)


def _pulls(fitted, error, injected, sigma) -> InjectionPulls:
    pull = (fitted - injected) / error
    pull = pull[np.isfinite(pull)]
    n = pull.size
    mean, width = float(pull.mean()), float(pull.std(ddof=1))
    mean_error, width_error = width / np.sqrt(n), width / np.sqrt(2 * (n - 1))
    passed = abs(mean) <= MEAN_TOLERANCE and abs(width - 1) <= WIDTH_TOLERANCE
    return InjectionPulls(sigma, float(injected), n, mean, mean_error, width, width_error, passed)


def bias_test(
    spectra: SelectedSpectra,
    window: int,
    efficiency: float,
    config: ScanConfig | None = None,
    n_toys: int = 1000,
    injections=INJECTIONS,
    random_state: int | np.random.Generator | None = None,
) -> BiasResult:
    """F-test the window's observed sidebands, then fit pseudo-data with 0/2/5 sigma injected."""
    # One BLAS thread: the same numbers in a fresh and in a resumed search.
    with threadpool_limits(1):
        return _bias_test(spectra, window, efficiency, config, n_toys, injections, random_state)


def _bias_test(spectra, window, efficiency, config, n_toys, injections, random_state):
    config = ScanConfig() if config is None else config
    matches = np.flatnonzero(np.isclose(spectra.efficiencies, efficiency))
    if matches.size == 0:
        raise ValueError(f"efficiency {efficiency} is not one of {spectra.efficiencies.tolist()}")
    if n_toys < 10:
        raise ValueError(f"n_toys must be at least 10, got {n_toys}")
    rng = np.random.default_rng(random_state)
    e = int(matches[0])
    region = spectra.windows[window]
    edges = spectra.edges
    in_sr, fit_bins = region.bins(edges)
    ftest = ftest_select(spectra.counts[window, e], edges, fit_bins, sqrt_s=config.sqrt_s)
    if not ftest.fit.valid:
        raise ValueError(f"window {window}: the F-test's fit failed: {ftest.fit.message}")
    background = np.where(fit_bins | in_sr, ftest.fit.predict(), 0.0)
    shape = gaussian_signal(edges, region.centre, config.resolution)
    base = rng.poisson(background, (n_toys, background.size)).astype(float)
    fitted, error = fit_signal_yields(base, edges, region, config)
    sigma = float(np.nanmedian(error))
    results = []
    for k in injections:
        injected = k * sigma
        if k == 0:
            counts = base
        else:
            counts = rng.poisson(background + injected * shape, base.shape).astype(float)
            fitted, error = fit_signal_yields(counts, edges, region, config)
        results.append(_pulls(fitted, error, injected, float(k)))
    return BiasResult(
        window=int(window),
        sr_low=region.sr_low,
        sr_high=region.sr_high,
        efficiency=float(efficiency),
        ftest_n_params=ftest.n_params,
        ftest_p_values=ftest.p_values,
        fit_n_params=config.n_params,
        sigma_events=sigma,
        injections=tuple(results),
    )
