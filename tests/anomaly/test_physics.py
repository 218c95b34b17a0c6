"""Statistical checks on the built-in dijet toy: signal found, background-only not separated.

The toy's jet masses scale with mjj, so a method that mistakes the mjj correlation for a signal
would separate signal-region data from held-out background even without signal.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anomaly import make_detector
from tests.anomaly.conftest import Events, toy_events

HGB = {"n_models": 2, "max_iter": 100}
FLOW = {
    "transform": "affine",
    "n_transforms": 3,
    "hidden_features": 32,
    "batch_norm": False,
    "training": {"epochs": 10, "batch_size": 512, "learning_rate": 3e-3, "patience": None},
    "verbose": False,
}
WEAK = {
    "cathode": {"classifier_params": HGB, "density_params": FLOW},
    "cwola": {"classifier_params": HGB},
}
#: a strong signal: about 480 signal events among about 4,600 SR background events (S/B ~ 10%)
N_BACKGROUND, N_SIGNAL = 30_000, 600
#: AUC of SR data vs held-out SR background with no signal: the standard error is about 0.007
#: for 4,600 vs 4,600 events; 0.03 is more than 4 standard errors
NULL_TOLERANCE = 0.03


@pytest.fixture(scope="module")
def injected() -> Events:
    """The data window with signal injected."""
    return toy_events(N_BACKGROUND, N_SIGNAL, seed=11)


@pytest.fixture(scope="module")
def test_set() -> Events:
    """Independent labelled SR events: about 2,300 background and 1,600 signal."""
    return toy_events(N_BACKGROUND // 2, 2000, seed=12).sr()


def test_injected_events_are_a_strong_signal(injected):
    """The toy setting is what the tolerances below assume."""
    n_sr = int(injected.in_sr.sum())
    n_sig = int(injected.labels[injected.in_sr].sum())
    assert 350 < n_sig < 600
    assert 0.06 < n_sig / (n_sr - n_sig) < 0.15


@pytest.mark.parametrize(("name", "extra"), [("supervised", "labels"), ("idealized", "background")])
def test_references_separate_the_signal_clearly(name, extra, injected, test_set):
    """Supervised and idealized detectors reach a test AUC above 0.95 (random: 0.5)."""
    inputs = {
        "labels": {"labels": injected.labels},
        "background": {"background": toy_events(N_BACKGROUND, 0, seed=13).sr().X},
    }[extra]
    det = make_detector(name, classifier_params=HGB, random_state=0)
    det.fit(injected.X, injected.mjj, injected.in_sr, **inputs)
    assert roc_auc_score(test_set.labels, det.score_samples(test_set.X)) > 0.95


@pytest.mark.parametrize("name", sorted(WEAK))
def test_weak_supervision_beats_random(name, injected, test_set):
    """CATHODE and CWoLa beat random by a margin of 0.25 in test AUC (AUC > 0.75).

    Also out-of-fold: the SR data's own scores rank the injected signal above the background.
    """
    det = make_detector(name, random_state=0, **WEAK[name])
    det.fit(injected.X, injected.mjj, injected.in_sr)
    assert roc_auc_score(test_set.labels, det.score_samples(test_set.X)) > 0.75
    assert roc_auc_score(injected.labels[injected.in_sr], det.oof_scores_) > 0.75


@pytest.mark.parametrize("name", sorted(WEAK))
def test_background_only_is_not_separated_from_held_out_background(name):
    """Without signal, out-of-fold scores of SR data and held-out SR background agree.

    Held-out events are scored by single fold models assigned at random, like the out-of-fold
    scores (an average of fold models is a smoother function and ranks differently).
    """
    data = toy_events(N_BACKGROUND, 0, seed=21)
    held_out = toy_events(N_BACKGROUND, 0, seed=22).sr()
    det = make_detector(name, random_state=1, **WEAK[name])
    det.fit(data.X, data.mjj, data.in_sr)
    fold = np.random.default_rng(0).integers(0, det.n_folds, len(held_out.X))
    held_scores = det.score_samples(held_out.X, fold=fold)
    y = np.repeat([1, 0], [len(det.oof_scores_), len(held_scores)])
    auc = roc_auc_score(y, np.concatenate([det.oof_scores_, held_scores]))
    assert auc == pytest.approx(0.5, abs=NULL_TOLERANCE)
