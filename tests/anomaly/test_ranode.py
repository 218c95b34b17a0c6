"""R-ANODE: the learnt signal fraction, restarts, seeding, reuse of a sideband fit and refusals."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anomaly import DETECTORS, RANODE, make_detector
from tests.anomaly.conftest import TINY_FLOW

SR = (0.4, 0.6)
#: the background flow of these tests, trained long enough that its mismodelling is small next
#: to the injected fractions (a worse background is absorbed by the signal flow)
BACKGROUND_FLOW = {
    **TINY_FLOW,
    "n_transforms": 3,
    "hidden_features": 32,
    "training": {"epochs": 30, "batch_size": 512, "learning_rate": 3e-3, "patience": None},
}
SIGNAL_TRAINING = {"epochs": 40, "batch_size": 256, "patience": 6}


def window(n_background: int, n_signal: int, seed: int):
    """Two features drifting with the mass m in [0, 1]; signal a narrow Gaussian in the SR."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(0, 1, n_background)
    X = rng.normal(0, 1, (n_background, 2)) + 0.5 * m[:, None]
    m_s = rng.uniform(*SR, n_signal)
    X_s = rng.normal([1.5, -1.0], 0.1, (n_signal, 2))
    X, m = np.concatenate([X, X_s]), np.concatenate([m, m_s])
    labels = np.repeat([0, 1], [n_background, n_signal])
    return X, m, (m > SR[0]) & (m < SR[1]), labels


@functools.cache
def window_and_sideband(n_background: int, n_signal: int, seed: int):
    """A window and its sideband fit (with the test flow), made once per window."""
    events = window(n_background, n_signal, seed)
    X, m, in_sr, _ = events
    fitted = RANODE(density_params=BACKGROUND_FLOW, random_state=seed).fit_sideband(X, m, in_sr)
    return events, fitted


def fit(events, sideband, seed: int = 0, **params) -> RANODE:
    """R-ANODE on a window with its shared sideband fit and the test training settings."""
    X, m, in_sr, _ = events
    params = {"signal_training": SIGNAL_TRAINING, "n_folds": 2, "n_restarts": 1, **params}
    return RANODE(
        density_params=BACKGROUND_FLOW, sideband_fit=sideband, random_state=seed, **params
    ).fit(X, m, in_sr)


def test_recovers_the_signal_fraction_and_finds_the_signal():
    events, sideband = window_and_sideband(40_000, 400, seed=1)
    in_sr, labels = events[2], events[3]
    true_fraction = labels[in_sr].mean()
    detector = fit(events, sideband)
    # Tolerance: a third of the true fraction (about 0.016 here) for the median over folds.
    assert np.median(detector.signal_fractions_) == pytest.approx(true_fraction, rel=1 / 3)
    assert roc_auc_score(labels[in_sr], detector.oof_scores_) > 0.95
    assert detector.sideband_fit_ is sideband
    assert detector.result_.diagnostics["signal_fractions"] == detector.signal_fractions_.tolist()


def test_background_only_learns_almost_no_signal():
    detector = fit(*window_and_sideband(40_000, 0, seed=2))
    # It starts at 1% (the signal test injects 5%); early stopping on the validation events
    # keeps the signal flow from fitting fluctuations, so every fold ends below its start.
    assert detector.signal_fractions_.max() < 0.01


def test_same_seed_same_scores():
    events, sideband = window_and_sideband(8000, 80, seed=3)
    short = {"signal_training": {"epochs": 3}}
    a, b = fit(events, sideband, **short), fit(events, sideband, **short)
    np.testing.assert_array_equal(a.oof_scores_, b.oof_scores_)
    np.testing.assert_array_equal(a.signal_fractions_, b.signal_fractions_)
    c = fit(events, sideband, seed=1, **short)
    assert not np.array_equal(a.oof_scores_, c.oof_scores_)


def test_restarts_keep_the_lowest_validation_loss_and_start_from_the_single_start():
    events, sideband = window_and_sideband(8000, 80, seed=3)
    short = {"signal_training": {"epochs": 3}}
    # seed 1: one fold keeps its first restart and the other a later one, so both cases show
    single = fit(events, sideband, seed=1, **short)
    restarted = fit(events, sideband, seed=1, n_restarts=3, **short)
    losses = restarted.restart_losses_
    assert losses.shape == (2, 3)
    assert np.isfinite(losses).all()
    # the first restart is the single start: same seed, same validation events
    np.testing.assert_array_equal(losses[:, 0], single.restart_losses_[:, 0])
    # restarts from other seeds end elsewhere
    assert np.unique(losses, axis=1).shape[1] == 3
    kept = losses.argmin(axis=1)
    assert (kept == 0).any()
    assert (kept > 0).any()
    # a fold whose first restart has the lowest loss scores its events as the single start does;
    # one whose later restart has it scores them with that restart's model
    first_kept = np.flatnonzero(kept == 0)
    in_fold = np.isin(restarted.folds_.fold, first_kept)
    np.testing.assert_array_equal(restarted.oof_scores_[in_fold], single.oof_scores_[in_fold])
    assert not np.array_equal(restarted.oof_scores_[~in_fold], single.oof_scores_[~in_fold])
    assert restarted.result_.diagnostics["restart_losses"] == losses.tolist()


def test_fits_its_own_background_and_scores_new_events():
    X, m, in_sr, _ = window(6000, 60, seed=4)
    detector = RANODE(
        density_params=TINY_FLOW, signal_training={"epochs": 2}, n_folds=2, random_state=0
    ).fit(X, m, in_sr)
    X_new, m_new, _, _ = window(500, 0, seed=5)
    scores = detector.score_samples(X_new, m_new)
    assert scores.shape == (500,)
    assert np.isfinite(scores).all()
    with pytest.raises(ValueError, match="needs the events' mjj"):
        detector.score_samples(X_new)


def test_is_registered():
    assert DETECTORS["ranode"] is RANODE
    assert isinstance(make_detector("ranode"), RANODE)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"initial_fraction": 0.0}, r"initial_fraction must be in \(0, 1\)"),
        ({"initial_fraction": 1.5}, r"initial_fraction must be in \(0, 1\)"),
        ({"signal_transforms": 0}, "signal_transforms must be a positive integer"),
        ({"signal_hidden": 2.5}, "signal_hidden must be a positive integer"),
        ({"n_restarts": 0}, "n_restarts must be a positive integer"),
        (
            {"n_restarts": 2, "signal_training": {"validation_fraction": 0.0}},
            "n_restarts=2 needs validation events",
        ),
        ({"signal_training": {"epochs": 0}}, "invalid training settings: epochs=0"),
        ({"sideband_fit": "maf"}, "sideband_fit must be a SidebandFit"),
    ],
)
def test_refuses_bad_settings(params, match):
    X, m, in_sr, _ = window(2000, 0, seed=6)
    with pytest.raises(ValueError, match=match):
        RANODE(n_folds=2, **params).fit(X, m, in_sr)


def test_refuses_a_sideband_fit_of_another_window_or_other_settings():
    (X, m, in_sr, _), sideband = window_and_sideband(8000, 80, seed=3)
    with pytest.raises(ValueError, match="fitted on other sideband events"):
        fit((X[1:], m[1:], in_sr[1:], None), sideband)
    with pytest.raises(ValueError, match="other density settings"):
        RANODE(sideband_fit=sideband, n_folds=2).fit(X, m, in_sr)
