"""How many training showers a generated sample is worth (arXiv:2008.06545, arXiv:2202.07352).

An observable is binned in quantiles of a large "truth" sample, so every bin holds the same share
of the truth. A sample of N events differs from those shares by a discrepancy D (chi2 per event,
mean squared error or Jensen-Shannon divergence). For samples drawn from the truth itself D falls
like c / N; for a generative model it levels off at the model's own error. The truth-equivalent
size of a generated sample is the N at which truth samples are as close to the truth as it is;
divided by the training size it is the amplification factor (above 1: the model is worth more
events than it was trained on).

To keep the reference shares independent of the truth subsamples, the truth is split in half: one
half defines the quantile bins and shares, the other supplies the subsamples. The truth curve is
fitted as a + c / N (a absorbs the finite reference), the generated one as a_g + c_g / N.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "AmplificationResult",
    "amplification_study",
    "quantile_discrepancy",
    "quantile_edges",
]

Metric = Literal["chi2", "mse", "jsd"]


def _check_sample(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of one observable, got shape {arr.shape}")
    bad = int((~np.isfinite(arr)).sum())
    if bad:
        raise ValueError(f"{name} contains NaN/inf in {bad} of {arr.size} events")
    return arr


def quantile_edges(truth: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner bin edges that split `truth` into `n_bins` equally populated bins."""
    truth = _check_sample(truth, "truth")
    if n_bins < 2 or truth.size < 2 * n_bins:
        raise ValueError(
            f"need n_bins >= 2 and at least {2 * n_bins} truth events, got {n_bins} "
            f"bins and {truth.size} events"
        )
    edges = np.quantile(truth, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    if np.any(np.diff(edges) <= 0):
        raise ValueError(
            "the truth has repeated values that make quantile bins coincide; use fewer bins or a "
            "continuous observable"
        )
    return edges


def _fractions(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1)
    return counts / counts.sum()


def quantile_discrepancy(
    sample: np.ndarray, edges: np.ndarray, reference: np.ndarray, metric: Metric = "chi2"
) -> float:
    """Discrepancy of `sample`'s bin shares from the `reference` shares in the bins of `edges`.

    chi2: sum (p - q)^2 / q (Pearson chi2 per event, expectation (n_bins - 1) / N for truth
    samples); mse: mean (p - q)^2 as in arXiv:2008.06545; jsd: Jensen-Shannon divergence (nats).
    """
    p = _fractions(_check_sample(sample, "sample"), edges)
    q = np.asarray(reference, dtype=np.float64)
    if q.shape != p.shape:
        raise ValueError(f"{p.size} bins from the edges but {q.size} reference shares")
    if np.any(q <= 0):
        raise ValueError("every reference share must be positive")
    if metric == "chi2":
        return float(np.sum((p - q) ** 2 / q))
    if metric == "mse":
        return float(np.mean((p - q) ** 2))
    if metric == "jsd":
        m = 0.5 * (p + q)
        kl_p = np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / m), 0.0))
        return float(0.5 * kl_p + 0.5 * np.sum(q * np.log(q / m)))
    raise ValueError(f"unknown metric {metric!r}; choose 'chi2', 'mse' or 'jsd'")


@dataclass(frozen=True)
class AmplificationResult:
    """Discrepancy versus sample size for truth and generated samples, and what it implies.

    `amplification` is the truth-equivalent size of the largest generated sample divided by the
    training size; `asymptotic_amplification` the same for an unlimited generated sample (from the
    fitted floor; inf when no floor above the truth's is seen). `training_equivalent_size` is the
    truth-equivalent size of the training set itself, a check that should be near its real size.
    """

    metric: str
    n_bins: int
    training_size: int
    sizes: np.ndarray
    truth_sizes: np.ndarray
    truth_mean: np.ndarray
    truth_std: np.ndarray
    generated_mean: np.ndarray
    generated_std: np.ndarray
    training_discrepancy: float
    truth_floor: float
    truth_slope: float
    generated_floor: float
    generated_slope: float
    equivalent_sizes: np.ndarray
    training_equivalent_size: float
    amplification: float
    asymptotic_amplification: float


def _fit_inverse(sizes: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares a >= 0, c >= 0 of values = a + c / sizes.

    The spread of a discrepancy grows with its size, so residuals count relative to the values.
    """
    w = 1.0 / np.maximum(values, np.finfo(np.float64).tiny)
    design = np.stack([np.ones_like(sizes, dtype=np.float64), 1.0 / sizes], axis=1) * w[:, None]
    (a, c), *_ = np.linalg.lstsq(design, values * w, rcond=None)
    if a < 0:  # no floor below zero: refit through the origin
        x = w / sizes
        a, c = 0.0, float(np.sum(x * values * w) / np.sum(x * x))
    return float(a), float(max(c, 0.0))


def _equivalent_size(discrepancy: np.ndarray | float, floor: float, slope: float) -> np.ndarray:
    """Truth sample size whose expected discrepancy equals `discrepancy` (inf at or below floor)."""
    excess = np.asarray(discrepancy, dtype=np.float64) - floor
    return np.where(excess > 0, slope / np.where(excess > 0, excess, 1.0), np.inf)


def _curve(
    pool: np.ndarray,
    sizes: np.ndarray,
    edges: np.ndarray,
    shares: np.ndarray,
    metric: Metric,
    n_repeats: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    vals = np.array(
        [
            [
                quantile_discrepancy(
                    pool[rng.choice(pool.size, int(n), replace=False)], edges, shares, metric
                )
                for _ in range(n_repeats)
            ]
            for n in sizes
        ]
    )
    return vals.mean(axis=1), vals.std(axis=1)


def amplification_study(
    generated: np.ndarray,
    training: np.ndarray,
    truth: np.ndarray,
    *,
    n_bins: int = 20,
    sizes: np.ndarray | None = None,
    n_repeats: int = 10,
    metric: Metric = "chi2",
    random_state: int = 0,
) -> AmplificationResult:
    """Measure the amplification factor of a generator for one observable.

    `generated` are the model's values, `training` those of its training set, `truth` a large
    independent sample from the true distribution (at least 4x the largest size studied is best).
    `sizes` default to 8 sizes geometric between 5 events per bin and all generated events.
    """
    generated = _check_sample(generated, "generated")
    training = _check_sample(training, "training")
    truth = _check_sample(truth, "truth")
    if n_repeats < 2:
        raise ValueError(f"n_repeats must be at least 2, got {n_repeats}")
    if metric not in ("chi2", "mse", "jsd"):
        raise ValueError(f"unknown metric {metric!r}; choose 'chi2', 'mse' or 'jsd'")
    rng = np.random.default_rng(random_state)
    perm = rng.permutation(truth.size)
    reference, pool = truth[perm[: truth.size // 2]], truth[perm[truth.size // 2 :]]
    edges = quantile_edges(reference, n_bins)
    shares = _fractions(reference, edges)
    if sizes is None:
        smallest = min(5 * n_bins, generated.size)
        sizes = np.unique(np.geomspace(smallest, generated.size, 8).astype(int))
    sizes = np.asarray(sizes, dtype=int)
    if sizes.min() < 2 or sizes.max() > generated.size:
        raise ValueError(
            f"sizes must lie between 2 and the {generated.size} generated events, got "
            f"{sizes.min()}..{sizes.max()}"
        )
    truth_sizes = np.unique(np.minimum(sizes, pool.size // 2))
    if truth_sizes.size < 2:
        raise ValueError(
            f"the truth ({truth.size} events) is too small to measure its curve at 2 sizes"
        )
    truth_mean, truth_std = _curve(pool, truth_sizes, edges, shares, metric, n_repeats, rng)
    gen_mean, gen_std = _curve(generated, sizes, edges, shares, metric, n_repeats, rng)
    floor_t, slope_t = _fit_inverse(truth_sizes.astype(np.float64), truth_mean)
    floor_g, slope_g = _fit_inverse(sizes.astype(np.float64), gen_mean)
    if slope_t <= 0:
        raise ValueError("the truth discrepancy does not fall with the sample size; more events?")
    d_train = quantile_discrepancy(training, edges, shares, metric)
    equivalent = _equivalent_size(gen_mean, floor_t, slope_t)
    return AmplificationResult(
        metric=metric,
        n_bins=n_bins,
        training_size=int(training.size),
        sizes=sizes,
        truth_sizes=truth_sizes,
        truth_mean=truth_mean,
        truth_std=truth_std,
        generated_mean=gen_mean,
        generated_std=gen_std,
        training_discrepancy=d_train,
        truth_floor=floor_t,
        truth_slope=slope_t,
        generated_floor=floor_g,
        generated_slope=slope_g,
        equivalent_sizes=equivalent,
        training_equivalent_size=float(_equivalent_size(d_train, floor_t, slope_t)),
        amplification=float(equivalent[-1] / training.size),
        asymptotic_amplification=float(_equivalent_size(floor_g, floor_t, slope_t) / training.size),
    )
