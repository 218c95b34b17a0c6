"""The CaloChallenge 2022 validation metrics, as pure functions.

- Separation power S = 1/2 sum_i (h1_i - h2_i)^2 / (h1_i + h2_i) of unit-normalised histograms with
  shared bins (0 for identical, 1 for disjoint distributions), per high-level feature.
- Classifier test: a neural network learns to tell reference from generated showers; its AUC and the
  Jensen-Shannon divergence estimated from its cross-entropy on held-out events, after isotonic
  calibration, as in the challenge's ``evaluate.py``.
- Frechet and kernel physics distances (FPD, KPD) on features scaled by their maxima, with the
  sampling, extrapolation and error conventions of ``jetnet.evaluation`` (arXiv:2211.10295).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch
from scipy.optimize import curve_fit
from scipy.stats import iqr
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from generative.calo.features import feature_info
from generative.training import TrainingConfig, seeded, to_tensor, train
from generative.validation import check_array

__all__ = [
    "ClassifierConfig",
    "ClassifierTestResult",
    "DistanceResult",
    "classifier_test",
    "frechet_physics_distance",
    "histogram_edges",
    "kernel_physics_distance",
    "separation_power",
    "separation_power_histograms",
    "separation_powers",
]


# ----------------------------------------------------------------------------- separation power
def histogram_edges(
    reference: np.ndarray,
    generated: np.ndarray,
    n_bins: int = 50,
    *,
    log_scale: bool = False,
    clip_quantile: float = 0.001,
) -> np.ndarray:
    """Shared bin edges spanning both samples between their pooled `clip_quantile` quantiles.

    With `log_scale` the edges are log-spaced over the positive values (zeros fall in the first
    bin once `separation_power` clips them in).
    """
    if n_bins < 1 or not 0.0 <= clip_quantile < 0.5:
        raise ValueError(
            f"need n_bins >= 1 and 0 <= clip_quantile < 0.5, got {n_bins}, {clip_quantile}"
        )
    pooled = np.concatenate([np.ravel(reference), np.ravel(generated)]).astype(np.float64)
    if log_scale:
        pooled = pooled[pooled > 0]
    pooled = pooled[np.isfinite(pooled)]
    if pooled.size == 0:
        return np.linspace(0.0, 1.0, n_bins + 1)
    lo, hi = np.quantile(pooled, [clip_quantile, 1.0 - clip_quantile])
    if log_scale:
        lo, hi = np.log10(lo), np.log10(hi)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, n_bins + 1)
    return 10.0**edges if log_scale else edges


def separation_power_histograms(hist1: np.ndarray, hist2: np.ndarray) -> float:
    """Separation power of two histograms with the same bins (each normalised to unit sum here)."""
    h1, h2 = np.asarray(hist1, dtype=np.float64), np.asarray(hist2, dtype=np.float64)
    if h1.shape != h2.shape:
        raise ValueError(f"histograms have different bins: {h1.shape} vs {h2.shape}")
    if h1.sum() <= 0 or h2.sum() <= 0:
        raise ValueError("a histogram is empty; the separation power needs entries in both")
    h1, h2 = h1 / h1.sum(), h2 / h2.sum()
    return float(0.5 * np.sum((h1 - h2) ** 2 / (h1 + h2 + 1e-16)))


def separation_power(
    reference: np.ndarray, generated: np.ndarray, bins: int | np.ndarray = 50
) -> float:
    """Separation power of two samples in shared bins (an int: `histogram_edges`).

    Values outside the edges are counted in the first or last bin, so every event contributes.
    """
    ref = check_array(reference, "reference")[:, 0]
    gen = check_array(generated, "generated")[:, 0]
    edges = histogram_edges(ref, gen, bins) if np.isscalar(bins) else np.asarray(bins, float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("bins must be a positive int or increasing edges (at least 2)")
    clip = (edges[0], np.nextafter(edges[-1], -np.inf))
    h1, _ = np.histogram(np.clip(ref, *clip), edges)
    h2, _ = np.histogram(np.clip(gen, *clip), edges)
    return separation_power_histograms(h1, h2)


def separation_powers(
    reference: pd.DataFrame, generated: pd.DataFrame, *, n_bins: int = 50
) -> pd.Series:
    """Separation power of every column of `reference` (e.g. `high_level_features` tables).

    Known feature names get log-spaced bins where they span decades (energies).
    """
    missing = [c for c in reference.columns if c not in generated.columns]
    if missing:
        raise KeyError(f"generated features lack column(s) {missing}")
    values = {}
    for name in reference.columns:
        try:
            log_scale = feature_info(str(name)).log_scale
        except KeyError:
            log_scale = False
        ref, gen = reference[name].to_numpy(), generated[name].to_numpy()
        edges = histogram_edges(ref, gen, n_bins, log_scale=log_scale)
        values[name] = separation_power(ref, gen, edges)
    return pd.Series(values, name="separation_power", dtype=np.float64)


# ------------------------------------------------------------------------------ classifier test
@dataclass(frozen=True)
class ClassifierConfig:
    """Network, input scaling and training of the classifier test.

    The default network is small (2 x 256) so that a test on 10^5 showers takes a few minutes on a
    CPU. `preprocessing` is fitted on the training split: "whiten" decorrelates the inputs (PCA,
    directions with variance below 1e-6 of the largest are not blown up further), which lets the
    network find differences hidden in correlated inputs such as E_tot/E_inc within
    (log E_inc, log E_tot) within a few epochs; "standardise" scales each input; "none" feeds them
    as the challenge did.
    """

    n_hidden_layers: int = 2
    width: int = 256
    dropout: float = 0.0
    preprocessing: Literal["whiten", "standardise", "none"] = "whiten"
    #: fractions of each class used for training, validation (epoch choice, calibration), test
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    training: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(
            epochs=50, batch_size=1000, learning_rate=1e-3, patience=10, lr_schedule="cosine"
        )
    )

    @classmethod
    def challenge(cls) -> ClassifierConfig:
        """The CaloChallenge 2022 setting: 3 x 2048 hidden, raw inputs, Adam 2e-4, 50 epochs."""
        training = TrainingConfig(
            epochs=50,
            batch_size=1000,
            learning_rate=2e-4,
            patience=None,
            lr_schedule="constant",
            clip_grad_norm=None,
        )
        return cls(n_hidden_layers=3, width=2048, preprocessing="none", training=training)

    def __post_init__(self) -> None:
        if self.n_hidden_layers < 0 or self.width < 1 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                f"invalid classifier: n_hidden_layers={self.n_hidden_layers} (>= 0), "
                f"width={self.width} (>= 1), dropout={self.dropout} (in [0, 1))"
            )
        if self.preprocessing not in ("whiten", "standardise", "none"):
            raise ValueError(f"preprocessing {self.preprocessing!r} is not whiten/standardise/none")
        if len(self.split) != 3 or min(self.split) <= 0:
            raise ValueError(f"split must be three positive fractions, got {self.split}")


@dataclass(frozen=True)
class ClassifierTestResult:
    """Outcome of a classifier test on held-out events (AUC 0.5 and JSD 0 mean indistinguishable).

    `auc` and `jsd` use the isotonically calibrated output as the challenge reports them; `jsd` is
    in units of log 2 (between 0 and 1, slightly negative by chance); `auc_raw` is uncalibrated.
    """

    auc: float
    jsd: float
    accuracy: float
    auc_raw: float
    n_train: int
    n_validation: int
    n_test: int
    best_epoch: int


def _input_transform(x: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Shift and matrix (x - shift) @ matrix of the chosen input scaling, fitted on `x`."""
    shift = x.mean(axis=0)
    if kind == "none":
        return np.zeros_like(shift), np.eye(x.shape[1])
    if kind == "standardise":
        std = x.std(axis=0)
        return shift, np.diag(1.0 / np.where(std > 0, std, 1.0))
    w, v = np.linalg.eigh(np.atleast_2d(np.cov(x, rowvar=False)))
    floor = max(float(w.max()), np.finfo(np.float64).tiny) * 1e-6
    return shift, v / np.sqrt(np.clip(w, floor, None))


def _mlp(n_inputs: int, config: ClassifierConfig) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    width_in = n_inputs
    for _ in range(config.n_hidden_layers):
        layers += [torch.nn.Linear(width_in, config.width), torch.nn.LeakyReLU()]
        if config.dropout > 0:
            layers.append(torch.nn.Dropout(config.dropout))
        width_in = config.width
    layers.append(torch.nn.Linear(width_in, 1))
    return torch.nn.Sequential(*layers)


def _bce_loss(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.binary_cross_entropy_with_logits(module(x)[:, 0], y)


def _predict(module: torch.nn.Module, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    with torch.no_grad():
        logits = [
            module(to_tensor(x[s : s + batch_size]))[:, 0] for s in range(0, len(x), batch_size)
        ]
    return torch.sigmoid(torch.cat(logits)).numpy().astype(np.float64)


def classifier_test(
    reference: np.ndarray,
    generated: np.ndarray,
    *,
    config: ClassifierConfig | None = None,
    random_state: int = 0,
    verbose: bool = False,
) -> ClassifierTestResult:
    """Train a classifier reference-vs-generated and evaluate it on held-out events.

    Inputs are rows of features (`features.low_level_inputs` or `high_level_inputs`). The larger
    sample is truncated to the smaller, each is split into train/validation/test, the inputs are
    scaled as `config.preprocessing` says with training statistics, the epoch with the lowest
    validation loss is kept and its output calibrated on the validation set before the test AUC
    and JSD are computed.
    """
    config = config or ClassifierConfig()
    ref = check_array(reference, "reference")
    gen = check_array(generated, "generated", n_features=ref.shape[1])
    rng = np.random.default_rng(random_state)
    n = min(len(ref), len(gen))
    fractions = np.asarray(config.split, dtype=np.float64)
    counts = np.floor(n * fractions / fractions.sum()).astype(int)
    if counts.min() < 10:
        raise ValueError(
            f"too few events for the classifier test: {len(ref)} reference and {len(gen)} "
            f"generated give {counts.tolist()} per class in train/validation/test with split "
            f"{config.split}; need at least 10 in each"
        )
    bounds = np.cumsum(counts)
    parts = []
    for sample in (ref, gen):
        idx = rng.permutation(len(sample))[: bounds[-1]]
        parts.append(np.split(sample[idx], bounds[:-1]))
    labels = [np.r_[np.ones(c), np.zeros(c)] for c in counts]
    x_train, x_val, x_test = (np.concatenate([parts[0][k], parts[1][k]]) for k in range(3))
    shift, matrix = _input_transform(x_train, config.preprocessing)
    x_train, x_val, x_test = ((x - shift) @ matrix for x in (x_train, x_val, x_test))

    with seeded(random_state):
        module = _mlp(x_train.shape[1], config)
    history = train(
        module,
        _bce_loss,
        [to_tensor(x_train), to_tensor(labels[0])],
        [to_tensor(x_val), to_tensor(labels[1])],
        config=config.training,
        random_state=random_state,
        verbose=verbose,
        desc="classifier test",
    )
    module.eval()
    p_val, p_test = _predict(module, x_val), _predict(module, x_test)
    calibrator = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6)
    p_cal = calibrator.fit(p_val, labels[1]).predict(p_test)
    y = labels[2]
    bce = -np.mean(y * np.log(p_cal) + (1 - y) * np.log(1 - p_cal))
    return ClassifierTestResult(
        auc=float(roc_auc_score(y, p_cal)),
        jsd=float((math.log(2.0) - bce) / math.log(2.0)),
        accuracy=float(np.mean((p_cal > 0.5) == y)),
        auc_raw=float(roc_auc_score(y, p_test)),
        n_train=int(2 * counts[0]),
        n_validation=int(2 * counts[1]),
        n_test=int(2 * counts[2]),
        best_epoch=history.best_epoch,
    )


# -------------------------------------------------------------------------------- FPD and KPD
@dataclass(frozen=True)
class DistanceResult:
    """A physics distance and its error (FPD: fit intercept; KPD: median, half 68% spread)."""

    value: float
    error: float


def _scaled(real: np.ndarray, generated: np.ndarray, normalise: bool) -> tuple[np.ndarray, ...]:
    x = check_array(real, "real features")
    y = check_array(generated, "generated features", n_features=x.shape[1])
    if not normalise:
        return x, y
    maxes = np.max(np.abs(x), axis=0)
    maxes[maxes == 0] = 1.0  # jetnet leaves all-zero features unscaled
    return x / maxes, y / maxes


def _frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) of the Gaussians fitted to x and y."""
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    s1, s2 = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    # Tr (S1 S2)^1/2 = sum of sqrt eigenvalues of the symmetric S1^1/2 S2 S1^1/2: stable when
    # singular, where scipy's sqrtm of the product warns and jetnet adds a diagonal offset
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * cross)


def frechet_physics_distance(
    real: np.ndarray,
    generated: np.ndarray,
    *,
    min_samples: int = 20_000,
    max_samples: int = 50_000,
    num_batches: int = 20,
    num_points: int = 10,
    normalise: bool = True,
    random_state: int = 42,
) -> DistanceResult:
    """FPD: Frechet distances of resampled batches, extrapolated linearly in 1/N to N -> infinity.

    Batches are drawn with replacement at `num_points` sizes evenly spaced in 1/N between
    `min_samples` and `max_samples`; the value is the fitted intercept (>= 0) and its error, as in
    jetnet (which recommends at least 50k events per sample).
    """
    if not 2 <= min_samples <= max_samples or num_points < 2 or num_batches < 1:
        raise ValueError(
            f"need 2 <= min_samples <= max_samples, num_points >= 2 and num_batches >= 1; got "
            f"{min_samples}, {max_samples}, {num_points}, {num_batches}"
        )
    x, y = _scaled(real, generated, normalise)
    sizes = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(random_state)
    means = []
    for size in sizes:
        vals = [
            _frechet_distance(x[rng.choice(len(x), size=size)], y[rng.choice(len(y), size=size)])
            for _ in range(num_batches)
        ]
        means.append(np.mean(vals))
    params, cov = curve_fit(
        lambda inv_n, a, b: a + b * inv_n,
        1.0 / sizes,
        np.asarray(means),
        bounds=([0, 0], [np.inf, np.inf]),
    )
    return DistanceResult(value=float(params[0]), error=float(np.sqrt(cov[0, 0])))


def _kernel_sum(a: np.ndarray, b: np.ndarray, degree: int, block: int = 1024) -> float:
    """Sum of the polynomial kernel (a.b / d + 1)^degree over all pairs, in blocks for memory."""
    gamma, total = 1.0 / a.shape[1], 0.0
    for s in range(0, len(a), block):
        k = a[s : s + block] @ b.T
        k *= gamma
        k += 1.0
        total += float(_int_power(k, degree).sum())
    return total


def _int_power(k: np.ndarray, degree: int) -> np.ndarray:
    """k**degree by repeated squaring (numpy's float power is ten times slower)."""
    result = None
    while degree:
        if degree & 1:
            result = k.copy() if result is None else result * k
        degree >>= 1
        if degree:
            k = k * k
    return result


def _mmd_unbiased(x: np.ndarray, y: np.ndarray, degree: int) -> float:
    m, n = len(x), len(y)
    diag_x = _int_power(np.einsum("ij,ij->i", x, x) / x.shape[1] + 1.0, degree).sum()
    diag_y = _int_power(np.einsum("ij,ij->i", y, y) / y.shape[1] + 1.0, degree).sum()
    return (
        (_kernel_sum(x, x, degree) - diag_x) / (m * (m - 1))
        + (_kernel_sum(y, y, degree) - diag_y) / (n * (n - 1))
        - 2.0 * _kernel_sum(x, y, degree) / (m * n)
    )


def kernel_physics_distance(
    real: np.ndarray,
    generated: np.ndarray,
    *,
    num_batches: int = 10,
    batch_size: int = 5_000,
    degree: int = 4,
    normalise: bool = True,
    random_state: int = 42,
) -> DistanceResult:
    """KPD: unbiased MMD^2 with the polynomial kernel (x.y / d + 1)^degree over resampled batches.

    Returns the median over `num_batches` batches and half the 16-84% inter-quantile range, with
    jetnet's per-batch seeds; `degree` 4 is what jetnet's `kpd` evaluates.
    """
    if num_batches < 1 or batch_size < 2 or degree < 1:
        raise ValueError(
            f"need num_batches >= 1, batch_size >= 2 and degree >= 1; got {num_batches}, "
            f"{batch_size}, {degree}"
        )
    x, y = _scaled(real, generated, normalise)
    vals = []
    for i in range(num_batches):
        rng = np.random.default_rng(random_state + i * 1000)
        xi, yi = x[rng.choice(len(x), size=batch_size)], y[rng.choice(len(y), size=batch_size)]
        vals.append(_mmd_unbiased(xi, yi, degree))
    return DistanceResult(
        value=float(np.median(vals)), error=float(iqr(vals, rng=(16.275, 83.725)) / 2)
    )
