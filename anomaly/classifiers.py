"""Classifier back-ends of the weakly supervised detectors, selectable by name.

Both are ensembles with one interface, `fit(X, y, sample_weight=None)` and `predict_proba(X)`
(columns: class 0, class 1), whose averaged class-1 probability is the anomaly score:

- "mlp": the CATHODE-paper network (arXiv:2109.00546), three hidden layers of 64 with ReLU,
  Adam and class-weighted binary cross-entropy; the prediction averages the snapshots of the
  epochs with the lowest validation loss (and of several seeds if asked).
- "hgb": scikit-learn HistGradientBoosting, several seeds averaged, the recipe of
  arXiv:2309.13111 (200 iterations, 31 leaves, half of the events for early stopping).
"""

from __future__ import annotations

import copy
import heapq
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

from generative.nets import MLP
from generative.training import TrainingConfig, seeded, to_tensor, train
from generative.validation import check_array, check_is_fitted

__all__ = ["CLASSIFIERS", "HGBEnsemble", "MLPEnsemble", "balanced_weights", "make_classifier"]


def balanced_weights(y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Per-event weights that give both classes the same total weight (mean weight one)."""
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    out = np.empty(len(y))
    for cls in (0, 1):
        mask = y == cls
        out[mask] = w[mask] * len(y) / (2.0 * w[mask].sum())
    return out


def _check_xy(
    X: Any, y: Any, sample_weight: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    X = check_array(X, "X")
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) like X's rows, got {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y must hold binary labels 0 and 1")
    counts = np.bincount(y.astype(np.int64), minlength=2)
    if counts.min() < 2:
        raise ValueError(f"each class needs at least 2 events, got {counts.tolist()} (0, 1)")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != y.shape or not np.all(np.isfinite(sample_weight)):
            raise ValueError("sample_weight must be finite with one value per event")
    return X, y.astype(np.int64), sample_weight


def _weights(y: np.ndarray, sample_weight: np.ndarray | None, class_weight: str | None):
    if class_weight == "balanced":
        return balanced_weights(y, sample_weight)
    if class_weight is None:
        return np.ones(len(y)) if sample_weight is None else sample_weight
    raise ValueError(f"class_weight must be 'balanced' or None, got {class_weight!r}")


def _seeds(random_state: int | None, n: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(random_state).generate_state(n)]


def _bce(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor):
    logits = module(x).squeeze(1)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return (loss * w).sum() / w.sum()


class _BestEpochs:
    """Epoch callback keeping copies of the `n` networks with the lowest validation loss."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._heap: list[tuple[float, int, torch.nn.Module]] = []

    def __call__(self, epoch: int, module: torch.nn.Module, _train: float, val: float) -> None:
        # A max-heap on the loss via negation; the newer epoch wins a tie.
        key = (-val, epoch)
        if len(self._heap) < self.n:
            heapq.heappush(self._heap, (*key, copy.deepcopy(module).eval()))
        elif key > self._heap[0][:2]:
            heapq.heapreplace(self._heap, (*key, copy.deepcopy(module).eval()))

    def modules(self) -> list[torch.nn.Module]:
        """The kept networks, best first."""
        return [m for *_, m in sorted(self._heap, key=lambda item: item[:2], reverse=True)]


class MLPEnsemble(BaseEstimator):
    """Torch MLP classifier averaged over its best epochs (and `n_models` seeds).

    The defaults are the CATHODE recipe made affordable on a CPU: larger batches (1024) with
    the paper's learning rate, and fewer epochs (30) of which the 10 with the lowest validation
    loss are averaged; ``training={"epochs": 100, "batch_size": 128}`` restores the paper's
    settings. `training` (a `TrainingConfig` or a mapping of some of its fields) changes only
    the fields it names of ``TRAINING``, the ensemble's defaults.
    """

    TRAINING: ClassVar[dict[str, Any]] = {
        "epochs": 30,
        "batch_size": 1024,
        "learning_rate": 1e-3,
        "validation_fraction": 0.2,
        # every epoch is a snapshot candidate: no early stopping, no schedule, no restore
        "patience": None,
        "lr_schedule": "constant",
        "restore_best": False,
    }

    def __init__(
        self,
        *,
        hidden: tuple[int, ...] = (64, 64, 64),
        n_best_epochs: int = 10,
        n_models: int = 1,
        class_weight: str | None = "balanced",
        training: TrainingConfig | dict[str, Any] | None = None,
        random_state: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.hidden = hidden
        self.n_best_epochs = n_best_epochs
        self.n_models = n_models
        self.class_weight = class_weight
        self.training = training
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPEnsemble:
        """Train `n_models` networks and keep each one's `n_best_epochs` best snapshots."""
        X, y, sample_weight = _check_xy(X, y, sample_weight)
        config = TrainingConfig.coerce(self.training, defaults=self.TRAINING)
        if self.n_best_epochs < 1 or self.n_best_epochs > config.epochs:
            raise ValueError(
                f"n_best_epochs must be between 1 and epochs={config.epochs}, got "
                f"{self.n_best_epochs}"
            )
        w = _weights(y, sample_weight, self.class_weight)
        self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0
        Z = (X - self.mean_) / self.scale_
        self.snapshots_: list[torch.nn.Module] = []
        for seed in _seeds(self.random_state, self.n_models):
            tr, va = train_test_split(
                np.arange(len(y)),
                test_size=config.validation_fraction,
                stratify=y,
                random_state=seed,
            )
            data = [to_tensor(a) for a in (Z, y, w)]
            with seeded(seed):
                module = MLP(X.shape[1], 1, list(self.hidden), activation="relu")
            best = _BestEpochs(self.n_best_epochs)
            train(
                module,
                _bce,
                [t[torch.as_tensor(tr)] for t in data],
                [t[torch.as_tensor(va)] for t in data],
                config=config,
                random_state=seed,
                verbose=self.verbose,
                desc="MLP classifier",
                on_epoch_end=best,
            )
            self.snapshots_ += best.modules()
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X: Any, *, batch_size: int = 100_000) -> np.ndarray:
        """Class probabilities (n, 2), averaged over the kept snapshots."""
        check_is_fitted(self, ("snapshots_",))
        X = check_array(X, "X", n_features=self.n_features_in_, allow_empty=True)
        Z = (X - self.mean_) / self.scale_
        p = np.zeros(len(Z))
        with torch.no_grad():
            for start in range(0, len(Z), batch_size):
                z = to_tensor(Z[start : start + batch_size])
                for snap in self.snapshots_:
                    p[start : start + len(z)] += torch.sigmoid(snap(z)).squeeze(1).double().numpy()
        p /= len(self.snapshots_)
        return np.column_stack([1.0 - p, p])


#: HistGradientBoosting's own bin count; events used to place the bin edges
_MAX_BINS, _BINNING_SUBSAMPLE = 255, 200_000


def quantile_bin_edges(X: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Per-feature quantile edges of at most 255 bins, placed on a subsample of the rows.

    The ensemble bins once, unweighted, and hands the boosted models bin indices: with class
    weights scikit-learn >= 1.6 places its bins by a weighted percentile per edge, which made
    binning 90% of the fit time. Trees split between bins either way, so the model is the same.
    """
    rows = X if len(X) <= _BINNING_SUBSAMPLE else X[rng.choice(len(X), _BINNING_SUBSAMPLE)]
    quantiles = np.linspace(0, 1, _MAX_BINS + 1)[1:-1]
    return [np.unique(np.quantile(column, quantiles)) for column in rows.T]


def apply_bins(X: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Bin index of every value (float, 0..254), the same monotone map for training and scoring."""
    return np.column_stack(
        [np.searchsorted(e, column, side="left") for e, column in zip(edges, X.T, strict=True)]
    ).astype(np.float64)


class HGBEnsemble(BaseEstimator):
    """HistGradientBoosting classifiers with different seeds, probabilities averaged."""

    def __init__(
        self,
        *,
        n_models: int = 10,
        max_iter: int = 200,
        max_leaf_nodes: int = 31,
        learning_rate: float = 0.1,
        validation_fraction: float = 0.5,
        early_stopping: bool = True,
        n_iter_no_change: int = 10,
        class_weight: str | None = "balanced",
        random_state: int | None = None,
    ) -> None:
        self.n_models = n_models
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> HGBEnsemble:
        """Fit `n_models` boosted ensembles, one per seed."""
        X, y, sample_weight = _check_xy(X, y, sample_weight)
        if self.n_models < 1:
            raise ValueError(f"n_models must be at least 1, got {self.n_models}")
        w = _weights(y, sample_weight, self.class_weight)
        seeds = _seeds(self.random_state, self.n_models + 1)
        self.bin_edges_ = quantile_bin_edges(X, np.random.default_rng(seeds[-1]))
        X = apply_bins(X, self.bin_edges_)
        self.models_ = [
            HistGradientBoostingClassifier(
                max_iter=self.max_iter,
                max_leaf_nodes=self.max_leaf_nodes,
                learning_rate=self.learning_rate,
                validation_fraction=self.validation_fraction,
                early_stopping=self.early_stopping,
                n_iter_no_change=self.n_iter_no_change,
                random_state=seed,
            ).fit(X, y, sample_weight=w)
            for seed in seeds[:-1]
        ]
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, 2), averaged over the seeds."""
        check_is_fitted(self, ("models_",))
        X = check_array(X, "X", n_features=self.n_features_in_, allow_empty=True)
        X = apply_bins(X, self.bin_edges_)
        return np.mean([m.predict_proba(X) for m in self.models_], axis=0)


#: classifier back-ends by name, e.g. ``make_classifier("hgb", n_models=5)``
CLASSIFIERS: dict[str, type[BaseEstimator]] = {"mlp": MLPEnsemble, "hgb": HGBEnsemble}


def make_classifier(name: str, **params: Any) -> BaseEstimator:
    """Construct a classifier back-end by its short name ('mlp' or 'hgb')."""
    try:
        cls = CLASSIFIERS[name]
    except KeyError:
        raise ValueError(
            f"unknown classifier {name!r}; choose from {sorted(CLASSIFIERS)}"
        ) from None
    return cls(**params)
