"""LaCATHODE: CATHODE's template, the classifier in the sideband flow's latent space."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anomaly import LaCATHODE, make_detector
from anomaly.lacathode import latent_map
from tests.anomaly.conftest import TINY_FLOW, gaussian_events, toy_events
from tests.anomaly.test_detectors import SpyClassifier, rows
from tests.anomaly.test_physics import FLOW, HGB, N_BACKGROUND, N_SIGNAL, NULL_TOLERANCE


@pytest.fixture(scope="module")
def fitted(gaussian):
    det = LaCATHODE(density_params=TINY_FLOW, classifier=SpyClassifier(), random_state=0)
    return det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)


def test_classifier_sees_latent_points_and_scores_out_of_fold(fitted, gaussian):
    """Fold classifiers train on latent SR data (never their own fold) and latent template."""
    latent_sr = fitted.latent_sr_
    low, high = fitted.latent_range_
    X_sr = gaussian.X[fitted.sr_indices_]
    np.testing.assert_allclose(
        latent_map(fitted.density_model_, X_sr, gaussian.mjj[fitted.sr_indices_], low, high),
        latent_sr,
    )
    for k, model in enumerate(fitted.fold_models_):
        spy = model.classifier
        assert not rows(latent_sr[fitted.folds_.fold == k]) & spy.trained_
        assert rows(latent_sr[fitted.folds_.fold != k]) <= spy.trained_
        assert rows(fitted.latent_reference_[fitted.reference_fold_ != k]) <= spy.trained_
    assert np.isfinite(fitted.oof_scores_).all()
    # the sidebands trained the flow that maps them: every model saw them
    assert not fitted.result_.honest[~gaussian.in_sr].any()
    assert fitted.result_.honest[gaussian.in_sr].all()
    assert fitted.result_.reference.X is fitted.reference_


def test_latent_template_is_close_to_a_unit_gaussian(fitted):
    """The template's latent points are the flow's Gaussian draws: mean 0, variance 1."""
    z = fitted.latent_reference_
    assert np.abs(z.mean(axis=0)).max() < 0.1
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=0.1)


def test_scoring_needs_mjj_and_an_invertible_flow(fitted, gaussian):
    """Scores of new events need their masses; a model without a latent space is refused."""
    with pytest.raises(ValueError, match="needs the events' mjj"):
        fitted.score_samples(gaussian_events(50, 0, seed=8).X)
    det = LaCATHODE(density_model="flow_matching", density_params={"verbose": False})
    with pytest.raises(TypeError, match="needs an invertible flow"):
        det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)


def test_same_seed_same_scores(gaussian):
    """Fits with one seed agree exactly."""
    params = {"density_params": TINY_FLOW, "classifier_params": HGB}
    a = make_detector("lacathode", random_state=3, **params)
    b = make_detector("lacathode", random_state=3, **params)
    a.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)
    b.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)
    np.testing.assert_array_equal(a.oof_scores_, b.oof_scores_)


def test_finds_the_toy_signal_and_not_a_background_only_one():
    """Strong toy signal: test AUC above 0.75; background only: data and held-out agree."""
    injected = toy_events(N_BACKGROUND, N_SIGNAL, seed=11)
    test_set = toy_events(N_BACKGROUND // 2, 2000, seed=12).sr()
    det = LaCATHODE(density_params=FLOW, classifier_params=HGB, random_state=0)
    det.fit(injected.X, injected.mjj, injected.in_sr)
    assert roc_auc_score(test_set.labels, det.score_samples(test_set.X, test_set.mjj)) > 0.75

    data = toy_events(N_BACKGROUND, 0, seed=21)
    held_out = toy_events(N_BACKGROUND, 0, seed=22).sr()
    det = LaCATHODE(density_params=FLOW, classifier_params=HGB, random_state=1)
    det.fit(data.X, data.mjj, data.in_sr)
    fold = np.random.default_rng(0).integers(0, det.n_folds, len(held_out.X))
    held = det.score_samples(held_out.X, held_out.mjj, fold=fold)
    y = np.repeat([1, 0], [len(det.oof_scores_), len(held)])
    auc = roc_auc_score(y, np.concatenate([det.oof_scores_, held]))
    assert auc == pytest.approx(0.5, abs=NULL_TOLERANCE)
