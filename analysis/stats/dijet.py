"""Dijet-function background fits of binned mjj spectra (iminuit Poisson likelihood).

The dijet function f(m) = p0 (1-x)^p1 / x^(p2 + p3 ln x + p4 ln^2 x), x = m / sqrt(s), is
written as exp(theta . basis(m)) with theta = (ln p0, p1, p2, p3, p4), so the
log-density is linear in the parameters. That gives exact starting values from a weighted
linear least-squares fit to log(counts), and a linear change of coordinates in which the
Poisson Hessian is close to the identity; MIGRAD then converges in a few iterations.
Stacks of spectra are fitted at once by `analysis.stats.dijet_batch`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from iminuit import Minuit, cost
from scipy import stats

__all__ = [
    "FTestResult",
    "FitResult",
    "dijet_bin_integrals",
    "dijet_density",
    "fit_dijet",
    "fixed_width_edges",
    "ftest_select",
    "resolution_edges",
    "sample_dijet",
]

SQRT_S = 13.0
PARAM_NAMES = ("log_p0", "p1", "p2", "p3", "p4")
ALLOWED_N_PARAMS = (3, 4, 5)


def fixed_width_edges(low: float, high: float, width: float = 0.1) -> np.ndarray:
    """Bin edges of a fixed width (TeV) covering [low, high], snapped to multiples of the width."""
    if not (np.isfinite(low) and np.isfinite(high) and high > low and width > 0):
        raise ValueError(f"need finite low < high and width > 0, got {low}, {high}, {width}")
    start = np.floor(low / width + 1e-9) * width
    stop = np.ceil(high / width - 1e-9) * width
    return np.round(np.arange(round((stop - start) / width) + 1) * width + start, 10)


def resolution_edges(low: float, high: float, resolution: float = 0.05) -> np.ndarray:
    """Bin edges whose width is `resolution` times the bin's lower edge (detector-like binning)."""
    if not (0 < low < high and resolution > 0):
        raise ValueError(f"need 0 < low < high and resolution > 0, got {low}, {high}, {resolution}")
    n = int(np.ceil(np.log(high / low) / np.log1p(resolution)))
    return low * (1.0 + resolution) ** np.arange(n + 1)


def _basis(mjj: np.ndarray, n_params: int, sqrt_s: float) -> np.ndarray:
    x = np.asarray(mjj, dtype=float) / sqrt_s
    log_x = np.log(x)
    columns = [np.ones_like(x), np.log1p(-x), -log_x, -(log_x**2), -(log_x**3)]
    return np.stack(columns[:n_params])


def _check_n_params(n_params: int) -> None:
    if n_params not in ALLOWED_N_PARAMS:
        raise ValueError(f"n_params must be one of {ALLOWED_N_PARAMS}, got {n_params}")


def _check_edges(edges: np.ndarray, sqrt_s: float) -> np.ndarray:
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2:
        raise ValueError(f"edges must be a 1-D array of at least 2 values, got shape {edges.shape}")
    if not np.all(np.isfinite(edges)):
        raise ValueError(f"edges contain {int(np.sum(~np.isfinite(edges)))} NaN/inf values")
    if np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be strictly increasing")
    if edges[0] <= 0 or edges[-1] >= sqrt_s:
        raise ValueError(
            f"edges must lie inside (0, sqrt_s={sqrt_s}) TeV, got [{edges[0]}, {edges[-1]}]"
        )
    return edges


def dijet_density(mjj: np.ndarray, params: np.ndarray, sqrt_s: float = SQRT_S) -> np.ndarray:
    """Dijet function in events per TeV at `mjj` (TeV); params = (ln p0, p1, ..., p4)."""
    params = np.asarray(params, dtype=float)
    _check_n_params(params.size)
    return np.exp(params @ _basis(mjj, params.size, sqrt_s))


class _Simpson:
    """Bin integrals of exp(theta . basis) by Simpson's rule, with basis values precomputed.

    Calling it gives the cumulative model at the bin edges that iminuit's binned costs want;
    `_parameters` spares iminuit a slow signature inspection on every cost construction.
    """

    def __init__(self, edges: np.ndarray, n_params: int, sqrt_s: float, transform: np.ndarray):
        mid = 0.5 * (edges[1:] + edges[:-1])
        self.basis_edges = transform.T @ _basis(edges, n_params, sqrt_s)
        self.basis_mid = transform.T @ _basis(mid, n_params, sqrt_s)
        self.weight = np.diff(edges) / 6.0
        self._parameters = {"edges": None} | {f"phi{i}": None for i in range(n_params)}

    def integrals(self, theta: np.ndarray) -> np.ndarray:
        """Bin integrals; `theta` may be (n_params,) or a stack (m, n_params)."""
        f_edges = np.exp(theta @ self.basis_edges)
        f_mid = np.exp(theta @ self.basis_mid)
        return (f_edges[..., :-1] + 4.0 * f_mid + f_edges[..., 1:]) * self.weight

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        g_edges = self.basis_edges * np.exp(theta @ self.basis_edges)
        g_mid = self.basis_mid * np.exp(theta @ self.basis_mid)
        return (g_edges[:, :-1] + 4.0 * g_mid + g_edges[:, 1:]) * self.weight

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """Second derivatives of the bin integrals, shape (n_params, n_params, n_bins)."""
        outer_edges = np.einsum("in,jn->ijn", self.basis_edges, self.basis_edges)
        outer_mid = np.einsum("in,jn->ijn", self.basis_mid, self.basis_mid)
        h_edges = outer_edges * np.exp(theta @ self.basis_edges)
        h_mid = outer_mid * np.exp(theta @ self.basis_mid)
        return (h_edges[..., :-1] + 4.0 * h_mid + h_edges[..., 1:]) * self.weight

    def __call__(self, _edges: np.ndarray, *theta: float) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(self.integrals(np.asarray(theta)))])

    def cdf_grad(self, _edges: np.ndarray, *theta: float) -> np.ndarray:
        """Gradient of the cumulative model, shape (n_params, n_edges)."""
        jac = np.cumsum(self.jacobian(np.asarray(theta)), axis=1)
        return np.concatenate([np.zeros((len(theta), 1)), jac], axis=1)


def dijet_bin_integrals(
    edges: np.ndarray, params: np.ndarray, sqrt_s: float = SQRT_S
) -> np.ndarray:
    """Expected counts per bin: the dijet function integrated over each bin (Simpson's rule)."""
    params = np.asarray(params, dtype=float)
    _check_n_params(params.size)
    edges = _check_edges(edges, sqrt_s)
    return _Simpson(edges, params.size, sqrt_s, np.eye(params.size)).integrals(params)


def _bin_integrals_stack(edges: np.ndarray, params: np.ndarray, sqrt_s: float) -> np.ndarray:
    """Bin integrals for a stack of parameter vectors (m, n_params) -> (m, n_bins)."""
    edges = _check_edges(edges, sqrt_s)
    return _Simpson(edges, params.shape[1], sqrt_s, np.eye(params.shape[1])).integrals(params)


def sample_dijet(
    n_events: int,
    params: np.ndarray,
    low: float,
    high: float,
    random_state: int | np.random.Generator | None = None,
    sqrt_s: float = SQRT_S,
) -> np.ndarray:
    """Draw mjj values (TeV) from the dijet function on [low, high] (inverse CDF on a fine grid)."""
    grid = np.linspace(low, high, 4001)
    cdf = np.concatenate([[0.0], np.cumsum(dijet_bin_integrals(grid, params, sqrt_s))])
    rng = np.random.default_rng(random_state)
    return np.interp(rng.random(int(n_events)) * cdf[-1], cdf, grid)


@dataclass(frozen=True, eq=False)
class FitResult:
    """Outcome of a dijet fit; `valid` is False (with `message`) when MINUIT did not converge."""

    n_params: int
    params: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    valid: bool
    message: str
    deviance: float
    ndof: int
    edges: np.ndarray
    mask: np.ndarray
    sqrt_s: float
    n_calls: int
    seconds: float

    def predict(self, edges: np.ndarray | None = None) -> np.ndarray:
        """Expected background counts per bin of `edges` (default: the fitted binning)."""
        return dijet_bin_integrals(self.edges if edges is None else edges, self.params, self.sqrt_s)

    def variations(self, edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Predictions at +-1 sigma along each covariance eigenvector, each (n_params, n_bins)."""
        edges = self.edges if edges is None else edges
        eigval, eigvec = np.linalg.eigh(self.covariance)
        shifts = (eigvec * np.sqrt(np.clip(eigval, 0.0, None))).T
        shifted = np.concatenate([self.params + shifts, self.params - shifts])
        up, down = np.split(_bin_integrals_stack(edges, shifted, self.sqrt_s), 2)
        return up, down


def _check_counts(counts: np.ndarray, edges: np.ndarray, mask: np.ndarray | None) -> tuple:
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 1 or counts.size != edges.size - 1:
        raise ValueError(
            f"counts must have len(edges) - 1 = {edges.size - 1} bins, got {counts.shape}"
        )
    bad = ~np.isfinite(counts)
    if bad.any():
        raise ValueError(f"counts contain {int(bad.sum())} NaN/inf bins")
    if np.any(counts < 0):
        raise ValueError(f"counts contain {int(np.sum(counts < 0))} negative bins")
    mask = np.ones(counts.size, bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != counts.shape:
        raise ValueError(f"mask must have shape {counts.shape}, got {mask.shape}")
    return counts, mask


def _start_values(counts, edges, mask, n_params, sqrt_s) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares of log(counts / width) -> start point and whitening transform."""
    centres = 0.5 * (edges[1:] + edges[:-1])
    use = mask & (counts > 0)
    design = _basis(centres[use], n_params, sqrt_s).T * np.sqrt(counts[use])[:, None]
    target = np.log(counts[use] / np.diff(edges)[use]) * np.sqrt(counts[use])
    q, r = np.linalg.qr(design)
    # In phi = R theta the Poisson Hessian is ~identity: R^-1 is the coordinate transform.
    return q.T @ target, np.linalg.inv(r)


def _poisson_covariance(model: _Simpson, phi: np.ndarray, counts, mask) -> np.ndarray:
    """Inverse of the exact Hessian of the Poisson NLL (replaces a numerical HESSE)."""
    nu = model.integrals(phi)[mask]
    jac = model.jacobian(phi)[:, mask]
    hess = model.hessian(phi)[..., mask]
    n = counts[mask]
    info = (jac * (n / nu**2)) @ jac.T + hess @ (1.0 - n / nu)
    try:
        return np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.full_like(info, np.nan)


def _migrad(counts, edges, mask, n_params, sqrt_s, theta_start):
    """MIGRAD in whitened coordinates; returns (minuit, covariance of phi, transform)."""
    phi_start, transform = _start_values(counts, edges, mask, n_params, sqrt_s)
    if theta_start is not None:
        phi_start = np.linalg.solve(transform, theta_start)
    model = _Simpson(edges, n_params, sqrt_s, transform)
    nll = cost.ExtendedBinnedNLL(
        counts,
        edges,
        model,
        grad=model.cdf_grad,
    )
    nll.mask = mask
    minuit = Minuit(nll, *phi_start)
    minuit.strategy = 0
    # MINUIT may probe parameters where the exponential overflows; it treats inf as uphill.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        minuit.migrad()
        if not minuit.valid:
            minuit.strategy = 2
            minuit.simplex().migrad()
        cov = _poisson_covariance(model, np.array(minuit.values), counts, mask)
    return minuit, cov, transform


def _positive_definite(matrix: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(matrix)) and np.all(np.linalg.eigvalsh(matrix) > 0))


def _converged(minuit: Minuit, cov_phi: np.ndarray) -> bool:
    return bool(minuit.valid) and _positive_definite(cov_phi)


def fit_dijet(
    counts: np.ndarray,
    edges: np.ndarray,
    mask: np.ndarray | None = None,
    n_params: int = 4,
    sqrt_s: float = SQRT_S,
) -> FitResult:
    """Fit the dijet function to binned counts; `mask` True marks bins used (False = signal region).

    Starts from a log-linear least-squares solution; if MIGRAD fails it refits in stages
    (n-1 parameters first). Raises ValueError on bad input; returns valid=False on non-convergence.
    """
    _check_n_params(n_params)
    edges = _check_edges(edges, sqrt_s)
    counts, mask = _check_counts(counts, edges, mask)
    n_used, n_nonzero = int(mask.sum()), int(np.sum(counts[mask] > 0))
    if counts[mask].sum() == 0:
        raise ValueError(f"histogram is empty: 0 events in the {n_used} fitted bins")
    if n_nonzero < n_params + 1:
        raise ValueError(
            f"too few non-empty bins to fit {n_params} parameters: {n_nonzero} of {n_used} "
            f"fitted bins have events ({counts[mask].sum():.0f} events)"
        )
    start = time.perf_counter()
    minuit, cov_phi, transform = _migrad(counts, edges, mask, n_params, sqrt_s, None)
    n_calls = minuit.nfcn
    if not _converged(minuit, cov_phi) and n_params > 3:
        staged = fit_dijet(counts, edges, mask, n_params - 1, sqrt_s)
        n_calls += staged.n_calls
        if staged.valid:
            minuit, cov_phi, transform = _migrad(
                counts, edges, mask, n_params, sqrt_s, np.append(staged.params, 0.0)
            )
            n_calls += minuit.nfcn
    phi = np.array(minuit.values)
    cov = transform @ cov_phi @ transform.T
    params = transform @ phi
    valid = _converged(minuit, cov_phi) and bool(np.all(np.isfinite(params)))
    message = (
        "converged"
        if valid
        else (
            f"fit did not converge (valid minimum={minuit.valid}, edm={minuit.fmin.edm:.3g}, "
            f"positive-definite covariance={_positive_definite(cov_phi)})"
        )
    )
    return FitResult(
        n_params=n_params,
        params=params,
        errors=np.sqrt(np.clip(np.diag(cov), 0.0, None)),
        covariance=cov,
        valid=valid,
        message=message,
        deviance=float(minuit.fval),
        ndof=n_used - n_params,
        edges=edges,
        mask=mask,
        sqrt_s=sqrt_s,
        n_calls=n_calls,
        seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True, eq=False)
class FTestResult:
    """Fisher F-test choice of the dijet-function order: the chosen fit and each step's p-value."""

    n_params: int
    fit: FitResult
    fits: tuple[FitResult, ...]
    p_values: tuple[float, ...]


def ftest_select(
    counts: np.ndarray,
    edges: np.ndarray,
    mask: np.ndarray | None = None,
    candidates: tuple[int, ...] = ALLOWED_N_PARAMS,
    alpha: float = 0.05,
    sqrt_s: float = SQRT_S,
) -> FTestResult:
    """Add parameters while the F-test on the Poisson deviance prefers the bigger one at `alpha`."""
    candidates = tuple(sorted(candidates))
    fits = [fit_dijet(counts, edges, mask, candidates[0], sqrt_s)]
    p_values: list[float] = []
    chosen = fits[0]
    for n_params in candidates[1:]:
        bigger = fit_dijet(counts, edges, mask, n_params, sqrt_s)
        fits.append(bigger)
        smaller = fits[-2]
        extra = bigger.n_params - smaller.n_params
        f_stat = ((smaller.deviance - bigger.deviance) / extra) / (bigger.deviance / bigger.ndof)
        p_value = float(stats.f.sf(f_stat, extra, bigger.ndof))
        p_values.append(p_value)
        if not (bigger.valid and p_value < alpha):
            break
        chosen = bigger
    return FTestResult(chosen.n_params, chosen, tuple(fits), tuple(p_values))
