"""Classifier back-ends: both learn, are seeded and reject bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from anomaly.classifiers import (
    HGBEnsemble,
    MLPEnsemble,
    apply_bins,
    balanced_weights,
    make_classifier,
    quantile_bin_edges,
)
from generative.training import TrainingConfig

FAST = {
    "mlp": {"n_best_epochs": 3, "training": {"epochs": 6, "batch_size": 256}},
    "hgb": {"n_models": 2, "max_iter": 50},
}


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two overlapping 3-D Gaussians, imbalanced 4:1, plus an independent test set."""
    rng = np.random.default_rng(0)

    def draw(n0, n1):
        y = np.repeat([0, 1], [n0, n1])
        return rng.normal(size=(n0 + n1, 3)) + 1.5 * y[:, None], y

    X, y = draw(2000, 500)
    X_test, y_test = draw(2000, 2000)
    return X, y, X_test, y_test


@pytest.mark.parametrize("name", ["mlp", "hgb"])
def test_backend_learns_and_is_seeded(name, blobs):
    """AUC near the optimum Phi(1.5 sqrt(3)/sqrt(2)) = 0.97; same seed, same probabilities."""
    X, y, X_test, y_test = blobs
    clf = make_classifier(name, **FAST[name], random_state=1).fit(X, y)
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(y_test, proba[:, 1]) > 0.95
    again = make_classifier(name, **FAST[name], random_state=1).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(proba, again)


def test_balanced_weighting_centres_the_probabilities(blobs):
    """Balanced weights: the class-averaged mean probability is 1/2; unweighted: the mean is 1/5."""
    X, y, _, _ = blobs
    p = HGBEnsemble(**FAST["hgb"], random_state=0).fit(X, y).predict_proba(X)[:, 1]
    assert (p[y == 0].mean() + p[y == 1].mean()) / 2 == pytest.approx(0.5, abs=0.05)
    unweighted = HGBEnsemble(**FAST["hgb"], class_weight=None, random_state=0).fit(X, y)
    assert unweighted.predict_proba(X)[:, 1].mean() == pytest.approx(0.2, abs=0.03)


def test_mlp_averages_its_best_epochs(blobs):
    """The MLP keeps n_best_epochs snapshots per seed, best validation loss first."""
    X, y, _, _ = blobs
    clf = MLPEnsemble(
        n_best_epochs=2, n_models=2, training={"epochs": 5, "batch_size": 256}, random_state=0
    )
    clf.fit(X, y)
    assert len(clf.snapshots_) == 4


def test_balanced_weights_equalise_classes():
    """Both classes get the same total weight and the mean weight is one."""
    y = np.repeat([0, 1], [90, 10])
    w = balanced_weights(y, np.linspace(1, 2, 100))
    assert w[y == 0].sum() == pytest.approx(w[y == 1].sum())
    assert w.mean() == pytest.approx(1.0)


def test_errors():
    """Unknown names, unfitted use and bad labels raise clear errors."""
    with pytest.raises(ValueError, match="unknown classifier 'svm'"):
        make_classifier("svm")
    with pytest.raises(NotFittedError):
        HGBEnsemble().predict_proba(np.zeros((2, 3)))
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="binary labels"):
        HGBEnsemble().fit(X, np.arange(10))
    with pytest.raises(ValueError, match="at least 2 events"):
        HGBEnsemble().fit(X, np.r_[np.zeros(9), 1])
    with pytest.raises(ValueError, match="n_best_epochs must be between 1 and epochs=3"):
        MLPEnsemble(n_best_epochs=5, training={"epochs": 3}).fit(X, np.r_[np.zeros(5), np.ones(5)])


def test_hgb_binning_is_monotone_and_bounded():
    """Binned features keep every event's order within a feature and use at most 255 bins."""
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.exponential(size=5000), rng.integers(0, 3, 5000).astype(float)])
    edges = quantile_bin_edges(X, rng)
    binned = apply_bins(X, edges)
    for j in range(X.shape[1]):
        order = np.argsort(X[:, j], kind="stable")
        assert (np.diff(binned[order, j]) >= 0).all()
    assert len(np.unique(binned[:, 0])) <= 255
    assert len(np.unique(binned[:, 1])) == 3


def test_partial_training_settings_keep_the_other_defaults():
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = np.r_[np.zeros(20), np.ones(20)]
    clf = MLPEnsemble(n_best_epochs=2, training={"epochs": 3}, random_state=0).fit(X, y)
    assert len(clf.snapshots_) == 2
    config = TrainingConfig.coerce(clf.training, defaults=MLPEnsemble.TRAINING)
    assert (config.epochs, config.batch_size, config.patience) == (3, 1024, None)
