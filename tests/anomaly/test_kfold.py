"""k-fold splitting and out-of-fold scoring shared by every detector."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly.kfold import MIN_EVENTS_PER_FOLD, fold_assignment, out_of_fold


def test_folds_cover_every_event_once_with_balanced_sizes():
    """Every event gets exactly one fold; fold sizes differ by at most one."""
    fold = fold_assignment(103, 5, random_state=0)
    assert fold.shape == (103,)
    counts = np.bincount(fold)
    assert counts.tolist() == sorted(counts.tolist(), reverse=True)
    assert counts.max() - counts.min() <= 1
    assert counts.sum() == 103


def test_folds_are_seeded():
    """The same seed gives the same split, another seed a different one."""
    np.testing.assert_array_equal(fold_assignment(200, 5, 3), fold_assignment(200, 5, 3))
    assert not np.array_equal(fold_assignment(200, 5, 3), fold_assignment(200, 5, 4))


def test_stratified_folds_keep_class_proportions():
    """With labels, each fold holds the same share of the rare class (+-1 event)."""
    labels = np.repeat([0, 1], [950, 50])
    fold = fold_assignment(1000, 5, 0, labels)
    per_fold = np.bincount(fold[labels == 1], minlength=5)
    assert per_fold.max() - per_fold.min() <= 1
    assert per_fold.sum() == 50


def test_out_of_fold_never_scores_training_events():
    """Each fold model is handed only other folds' events and scores only its own fold."""
    fold = fold_assignment(60, 3, 0)
    X = np.arange(60.0)[:, None]
    seen: dict[int, set[int]] = {}

    def fit_fold(train, k):
        seen[k] = set(train.tolist())

        def scorer(x, mjj):
            rows = set(x[:, 0].astype(int).tolist())
            assert not rows & seen[k]
            return np.full(len(x), float(k))

        return scorer

    oof, models = out_of_fold(X, None, fold, fit_fold)
    assert len(models) == 3
    np.testing.assert_array_equal(oof.scores, fold.astype(float))
    for k in range(3):
        assert set(oof.train_indices(k).tolist()) == seen[k]
        assert not set(oof.test_indices(k).tolist()) & seen[k]


@pytest.mark.parametrize(
    ("n", "n_folds", "labels", "match"),
    [
        (5 * MIN_EVENTS_PER_FOLD - 1, 5, None, "too few signal-region events for 5 folds"),
        (100, 1, None, "n_folds must be an integer of at least 2"),
        (100, 5, np.repeat([0, 1], [97, 3]), "every class needs at least 5"),
        (100, 5, np.zeros(100), "class counts"),
    ],
)
def test_bad_splits_raise(n, n_folds, labels, match):
    """Too few events, too few folds or too few events of a class are clear errors."""
    with pytest.raises(ValueError, match=match):
        fold_assignment(n, n_folds, 0, labels)
