"""Seeded k-fold splits and out-of-fold scoring shared by every detector.

An event is scored only by the model of its own fold, which trained on the other folds; the split
is stratified when labels exist so every fold sees both classes in the same proportion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

__all__ = ["FoldModel", "OutOfFold", "fold_assignment", "out_of_fold"]

#: fewest events a fold may hold: fewer makes its score and its model's training set meaningless
MIN_EVENTS_PER_FOLD = 5

#: a fitted fold model: scores events (features, mjj) it never trained on
FoldModel = Callable[[np.ndarray, np.ndarray | None], np.ndarray]


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold scores of n events and which fold model scored (and did not see) each."""

    scores: np.ndarray
    fold: np.ndarray
    n_folds: int

    def train_indices(self, k: int) -> np.ndarray:
        """Indices of the events fold model `k` trained on (all folds but `k`)."""
        return np.flatnonzero(self.fold != k)

    def test_indices(self, k: int) -> np.ndarray:
        """Indices of the events fold model `k` scored."""
        return np.flatnonzero(self.fold == k)


def fold_assignment(
    n: int,
    n_folds: int,
    random_state: int | np.random.SeedSequence | None,
    labels: np.ndarray | None = None,
    *,
    what: str = "signal-region events",
) -> np.ndarray:
    """Fold id (0..n_folds-1) of each of `n` events; stratified by `labels` when given."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer of at least 2, got {n_folds!r}")
    if n < n_folds * MIN_EVENTS_PER_FOLD:
        raise ValueError(
            f"too few {what} for {n_folds} folds: {n} events, need at least "
            f"{n_folds * MIN_EVENTS_PER_FOLD} ({MIN_EVENTS_PER_FOLD} per fold)"
        )
    seed = _seed(random_state)
    fold = np.empty(n, dtype=np.int64)
    if labels is None:
        splitter = KFold(n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(n))
    else:
        labels = np.asarray(labels)
        classes, counts = np.unique(labels, return_counts=True)
        if len(classes) < 2 or counts.min() < n_folds:
            found = dict(zip(classes.tolist(), counts.tolist(), strict=True))
            raise ValueError(
                f"too few {what} per class for {n_folds} stratified folds: class counts "
                f"{found}; every class needs at least {n_folds} events"
            )
        splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(n), labels)
    for k, (_, test) in enumerate(splits):
        fold[test] = k
    return fold


def out_of_fold(
    X: np.ndarray,
    mjj: np.ndarray | None,
    fold: np.ndarray,
    fit_fold: Callable[[np.ndarray, int], FoldModel],
) -> tuple[OutOfFold, list[FoldModel]]:
    """Fit one model per fold on the other folds and score the fold's events with it.

    `fit_fold(train_indices, k)` returns a scorer; it is handed only the indices of the events
    outside fold `k`, and the scorer only ever sees fold `k`'s events here.
    """
    n_folds = int(fold.max()) + 1
    scores = np.full(len(fold), np.nan)
    models: list[FoldModel] = []
    for k in range(n_folds):
        test = np.flatnonzero(fold == k)
        model = fit_fold(np.flatnonzero(fold != k), k)
        scores[test] = model(X[test], None if mjj is None else mjj[test])
        models.append(model)
    return OutOfFold(scores=scores, fold=fold, n_folds=n_folds), models


def _seed(random_state: int | np.random.SeedSequence | None) -> int | None:
    if isinstance(random_state, np.random.SeedSequence):
        return int(random_state.generate_state(1)[0])
    return random_state
