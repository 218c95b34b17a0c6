"""Dijet fits of many spectra at once: vectorised Fisher scoring on `fit_dijet`'s likelihood.

The look-elsewhere pseudo-experiments and the bias tests fit thousands of spectra sharing a
binning and a mask; one vectorised Newton iteration serves them all, and the few it does not
converge on are refitted one by one with `analysis.stats.dijet.fit_dijet`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.stats.dijet import (
    SQRT_S,
    _basis,
    _bin_integrals_stack,
    _check_edges,
    _check_n_params,
    fit_dijet,
)

__all__ = ["BatchFit", "fit_dijet_batch"]


@dataclass(frozen=True, eq=False)
class BatchFit:
    """Dijet fits of a stack of spectra sharing binning and mask (leading axis: the spectrum).

    `valid` has the meaning of `FitResult.valid` (converged, positive-definite covariance);
    a spectrum too sparse to fit at all is not valid either.
    """

    n_params: int
    params: np.ndarray
    covariance: np.ndarray
    valid: np.ndarray
    deviance: np.ndarray
    edges: np.ndarray
    mask: np.ndarray
    sqrt_s: float
    n_fallbacks: int

    def predict(self, edges: np.ndarray | None = None) -> np.ndarray:
        """Expected counts (n_spectra, n_bins) on `edges` (default: the fitted binning)."""
        edges = self.edges if edges is None else edges
        return _bin_integrals_stack(edges, np.nan_to_num(self.params), self.sqrt_s)

    def variations(self, edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """+-1 sigma predictions along each eigenvector, (n_spectra, n_params, n_bins)."""
        edges = self.edges if edges is None else edges
        cov = np.where(self.valid[:, None, None], self.covariance, np.eye(self.n_params))
        eigval, eigvec = np.linalg.eigh(cov)
        shifts = np.swapaxes(eigvec * np.sqrt(np.clip(eigval, 0.0, None))[:, None, :], 1, 2)
        params = np.nan_to_num(self.params)[:, None, :]
        n, p = params.shape[0], self.n_params
        both = np.concatenate([params + shifts, params - shifts], axis=1).reshape(-1, p)
        integrals = _bin_integrals_stack(edges, both, self.sqrt_s).reshape(n, 2 * p, -1)
        return integrals[:, :p], integrals[:, p:]


class _FittedBins:
    """Simpson bin integrals of exp(phi . basis) on the fitted bins only, for stacks of phi."""

    def __init__(self, edges, mask, n_params, sqrt_s, transform):
        mid = 0.5 * (edges[1:] + edges[:-1])
        basis_edges = transform.T @ _basis(edges, n_params, sqrt_s)
        self.left, self.right = basis_edges[:, :-1][:, mask], basis_edges[:, 1:][:, mask]
        self.mid = (transform.T @ _basis(mid, n_params, sqrt_s))[:, mask]
        self.weight = (np.diff(edges) / 6.0)[mask]

    def _terms(self, phi):
        return (
            (b, np.exp(phi @ b), c)
            for b, c in ((self.left, 1.0), (self.mid, 4.0), (self.right, 1.0))
        )

    def integrals(self, phi: np.ndarray) -> np.ndarray:
        return sum(c * f for _, f, c in self._terms(phi)) * self.weight

    def jacobian(self, phi: np.ndarray) -> np.ndarray:
        """(m, n_params, n_bins)."""
        return sum(c * b * f[:, None, :] for b, f, c in self._terms(phi)) * self.weight

    def hessian(self, phi: np.ndarray) -> np.ndarray:
        """(m, n_params, n_params, n_bins)."""
        return (
            sum(
                c * np.einsum("in,jn->ijn", b, b) * f[:, None, None, :]
                for b, f, c in self._terms(phi)
            )
            * self.weight
        )


def _batch_nll(model: _FittedBins, phi: np.ndarray, counts: np.ndarray):
    """Poisson NLL (up to a constant) per spectrum, inf where the model is not positive."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        nu = model.integrals(phi)
        value = np.sum(nu - counts * np.log(nu), axis=1)
    return np.where(np.all(nu > 0, axis=1) & np.isfinite(value), value, np.inf), nu


def _batch_newton(model: _FittedBins, phi: np.ndarray, counts: np.ndarray, max_iter: int):
    """Fisher scoring with step halving on each spectrum's Poisson NLL; returns phi, converged."""
    value, nu = _batch_nll(model, phi, counts)
    converged = np.zeros(phi.shape[0], bool)
    for _ in range(max_iter):
        active = np.flatnonzero(~converged & np.isfinite(value))
        if active.size == 0:
            break
        n = counts[active]
        with np.errstate(over="ignore", invalid="ignore"):
            jac = model.jacobian(phi[active])
            grad = np.einsum("bpn,bn->bp", jac, 1.0 - n / nu[active])
            fisher = np.einsum("bpn,bqn->bpq", jac / nu[active][:, None, :], jac)
        ok = np.all(np.isfinite(fisher), axis=(1, 2)) & np.all(np.isfinite(grad), axis=1)
        ok[ok] = np.linalg.det(fisher[ok]) > 0
        value[active[~ok]] = np.inf  # unusable curvature: left to the one-by-one fit
        active, grad, fisher, n = active[ok], grad[ok], fisher[ok], n[ok]
        step = -np.linalg.solve(fisher, grad[..., None])[..., 0]
        gain = -np.sum(grad * step, axis=1)
        done = gain < 1e-9
        converged[active[done]] = True
        idx, step, n, gain = active[~done], step[~done], n[~done], gain[~done]
        for _ in range(30):
            # Halved below a predicted gain of 1e-10, a step changes nothing that matters.
            small = gain < 1e-10
            converged[idx[small]] = True
            idx, step, n, gain = idx[~small], step[~small], n[~small], gain[~small]
            if idx.size == 0:
                break
            trial = phi[idx] + step
            trial_value, trial_nu = _batch_nll(model, trial, n)
            better = trial_value <= value[idx]
            phi[idx[better]] = trial[better]
            value[idx[better]], nu[idx[better]] = trial_value[better], trial_nu[better]
            idx, step, n = idx[~better], 0.5 * step[~better], n[~better]
            gain = 0.5 * gain[~better]
    return phi, converged


def fit_dijet_batch(
    counts: np.ndarray,
    edges: np.ndarray,
    mask: np.ndarray | None = None,
    n_params: int = 4,
    sqrt_s: float = SQRT_S,
    max_iter: int = 60,
) -> BatchFit:
    """`fit_dijet` of many spectra at once (vectorised Newton on the same Poisson likelihood).

    Spectra the vectorised minimiser does not converge on are refitted one by one with
    `fit_dijet`, so every result is the likelihood's minimum as `fit_dijet` finds it; spectra
    too sparse to fit (fewer than n_params + 1 non-empty fitted bins) come back not valid.
    """
    _check_n_params(n_params)
    edges = _check_edges(edges, sqrt_s)
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[1] != edges.size - 1:
        raise ValueError(f"counts must be (n_spectra, {edges.size - 1}), got {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("counts must be finite and non-negative")
    mask = np.ones(counts.shape[1], bool) if mask is None else np.asarray(mask, bool)
    n = counts.shape[0]
    params = np.full((n, n_params), np.nan)
    covariance = np.full((n, n_params, n_params), np.nan)
    valid = np.zeros(n, bool)
    deviance = np.full(n, np.nan)
    rows = np.flatnonzero(np.sum(counts[:, mask] > 0, axis=1) >= n_params + 1)
    fallbacks = np.zeros(0, int)
    if rows.size:
        used = counts[rows][:, mask]
        centres = 0.5 * (edges[1:] + edges[:-1])[mask]
        design = _basis(centres, n_params, sqrt_s).T
        # One whitening for the stack (from the summed spectrum): Fisher information ~ identity.
        _, r = np.linalg.qr(design * np.sqrt(np.maximum(used.sum(axis=0), 1.0))[:, None])
        transform = np.linalg.inv(r)
        model = _FittedBins(edges, mask, n_params, sqrt_s, transform)
        # Start: least squares of log(counts / width), weighted by the counts (as fit_dijet).
        design = design @ transform
        target = np.log(np.where(used > 0, used, 1.0) / np.diff(edges)[mask])
        normal = np.einsum("bi,ij,ik->bjk", used, design, design)
        normal += 1e-12 * np.eye(n_params)
        phi = np.linalg.solve(normal, np.einsum("bi,ij,bi->bj", used, design, target)[..., None])
        phi, converged = _batch_newton(model, phi[..., 0], used, max_iter)
        with np.errstate(all="ignore"):
            nu = model.integrals(phi)
            jac = model.jacobian(phi)
            info = np.einsum("bpn,bqn->bpq", jac * (used / nu**2)[:, None, :], jac)
            info += np.einsum("bpqn,bn->bpq", model.hessian(phi), 1.0 - used / nu)
            dev = 2.0 * np.sum(
                nu - used + used * np.log(np.where(used > 0, used, 1.0) / nu), axis=1
            )
        good = converged & np.all(np.isfinite(info), axis=(1, 2))
        good[good] = np.all(np.linalg.eigvalsh(info[good]) > 0, axis=1)
        cov_phi = np.full_like(info, np.nan)
        cov_phi[good] = np.linalg.inv(info[good])
        params[rows] = phi @ transform.T
        covariance[rows] = transform @ cov_phi @ transform.T
        valid[rows] = good
        deviance[rows] = dev
        fallbacks = rows[~good]
    for i in fallbacks:
        fit = fit_dijet(counts[i], edges, mask, n_params, sqrt_s)
        params[i], covariance[i], valid[i], deviance[i] = (
            fit.params,
            fit.covariance,
            fit.valid,
            fit.deviance,
        )
    return BatchFit(
        n_params, params, covariance, valid, deviance, edges, mask, sqrt_s, int(fallbacks.size)
    )
