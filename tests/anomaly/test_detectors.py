"""The detector interface: out-of-fold honesty, seeding, refusals and clear errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from anomaly import (
    ANODE,
    CATHODE,
    FAST_MAF,
    Autoencoder,
    CWoLa,
    Idealized,
    Supervised,
    make_detector,
)
from anomaly.cathode import make_density_model
from generative.flows import MAF
from tests.anomaly.conftest import TINY_FLOW, Events, gaussian_events

HGB = {"n_models": 1, "max_iter": 50}
FAST: dict[str, dict[str, Any]] = {
    "supervised": {"classifier_params": HGB},
    "idealized": {"classifier_params": HGB},
    "cwola": {"classifier_params": HGB},
    "cathode": {"classifier_params": HGB, "density_params": TINY_FLOW},
    "anode": {"density_params": TINY_FLOW},
    "autoencoder": {"training": {"epochs": 4}},
}


def fit_kwargs(name: str, events: Events) -> dict[str, Any]:
    """The extra inputs a detector needs: labels (supervised) or background (idealized)."""
    if name == "supervised":
        return {"labels": events.labels}
    if name == "idealized":
        return {"background": gaussian_events(3000, 0, seed=5).sr().X}
    return {}


def rows(X: np.ndarray) -> set[bytes]:
    """Exact identities of events."""
    return {r.tobytes() for r in np.ascontiguousarray(X)}


class SpyClassifier(BaseEstimator):
    """Records the events it trains on and asserts it never scores one of them."""

    def __init__(self, random_state: int | None = None) -> None:
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> SpyClassifier:
        """Remember the training events."""
        self.trained_ = rows(X)
        self.scored_: set[bytes] = set()
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Record the scored events; the score itself is irrelevant here."""
        scored = rows(X)
        assert not scored & self.trained_, "a fold model scored an event it trained on"
        self.scored_ |= scored
        p = 1 / (1 + np.exp(-X.sum(axis=1)))
        return np.column_stack([1 - p, p])


class RecordingMAF(MAF):
    """A MAF that remembers the events it was fitted on."""

    def fit(self, X: Any, context: Any = None, **kwargs: Any) -> RecordingMAF:
        """Fit and remember the training events."""
        self.trained_ = rows(np.asarray(X, dtype=np.float64))
        return super().fit(X, context, **kwargs)


@pytest.mark.parametrize("name", ["supervised", "idealized", "cwola", "cathode"])
def test_no_event_is_scored_by_a_model_that_trained_on_it(name, gaussian):
    """Each SR event is scored once, by the one fold model that trained on all other folds.

    The spies also see the sideband rows scored for `result_.scores` and assert that none of
    them is scored by a model that trained on it (CWoLa's sidebands are training data).
    """
    params = {k: v for k, v in FAST[name].items() if k != "classifier_params"}
    det = make_detector(name, classifier=SpyClassifier(), random_state=0, **params)
    det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr, **fit_kwargs(name, gaussian))
    X_sr = gaussian.X[det.sr_indices_]
    scored_total = 0
    for k, model in enumerate(det.fold_models_):
        spy = model.classifier
        own = rows(X_sr[det.folds_.fold == k])
        others = rows(X_sr[det.folds_.fold != k])
        assert spy.scored_ & rows(X_sr) == own
        assert not own & spy.trained_
        assert others <= spy.trained_
        scored_total += len(spy.scored_ & rows(X_sr))
    assert scored_total == len(X_sr)
    assert np.isfinite(det.oof_scores_).all()
    np.testing.assert_array_equal(det.result_.scores[det.sr_indices_], det.oof_scores_)
    assert np.isfinite(det.result_.scores).all()
    assert det.result_.honest.all()


@pytest.mark.parametrize(
    ("name", "params", "sidebands_honest"),
    [
        ("cwola", {"sideband_width": 0.2}, True),
        ("anode", {}, False),
        ("autoencoder", {"train_on": "signal_region"}, True),
        ("autoencoder", {"train_on": "window"}, False),
    ],
)
def test_window_scores_flag_rows_every_model_saw(name, params, sidebands_honest, gaussian):
    """Sideband rows get a score for every row; those every fold model trained on are flagged."""
    det = make_detector(name, **FAST[name], **params, random_state=0)
    det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)
    assert det.result_.scores.shape == (len(gaussian.X),)
    assert np.isfinite(det.result_.scores).all()
    np.testing.assert_array_equal(det.result_.scores[det.sr_indices_], det.oof_scores_)
    assert det.result_.honest[gaussian.in_sr].all()
    assert (det.result_.honest[~gaussian.in_sr] == sidebands_honest).all()


def test_anode_fold_densities_never_saw_their_events(gaussian):
    """ANODE: the SR model of fold k trained on the other folds; the SB model on no SR event."""
    det = ANODE(density_model=RecordingMAF(**TINY_FLOW), random_state=0)
    det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)
    X_sr = gaussian.X[det.sr_indices_]
    assert not det.sideband_model_.trained_ & rows(X_sr)
    for k, model in enumerate(det.fold_models_):
        assert model.signal_region.trained_ == rows(X_sr[det.folds_.fold != k])


@pytest.mark.parametrize("train_on", ["window", "signal_region", "sidebands"])
def test_autoencoder_trains_on_the_chosen_events(train_on, gaussian):
    """The standardisation of fold k is that of exactly its training events."""
    det = Autoencoder(train_on=train_on, training={"epochs": 2}, random_state=0)
    det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)
    X_sr, X_sb = gaussian.X[gaussian.in_sr], gaussian.X[~gaussian.in_sr]
    for k, model in enumerate(det.fold_models_):
        others = X_sr[det.folds_.fold != k]
        expected = {"window": np.concatenate([others, X_sb]), "signal_region": others}
        np.testing.assert_allclose(model.mean, expected.get(train_on, X_sb).mean(axis=0))
    n_models = len({id(m) for m in det.fold_models_})
    assert n_models == (1 if train_on == "sidebands" else 5)


@pytest.mark.parametrize("name", sorted(FAST))
def test_same_seed_same_scores(name, gaussian):
    """Fits with one seed agree exactly (out-of-fold and new events); another seed differs."""
    test = gaussian_events(800, 50, seed=9).sr()

    def run(seed):
        det = make_detector(name, random_state=seed, **FAST[name])
        det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr, **fit_kwargs(name, gaussian))
        return det.oof_scores_, det.score_samples(test.X, test.mjj)

    (oof_a, new_a), (oof_b, new_b), (oof_c, _) = run(3), run(3), run(4)
    np.testing.assert_array_equal(oof_a, oof_b)
    np.testing.assert_array_equal(new_a, new_b)
    assert not np.array_equal(oof_a, oof_c)
    assert oof_a.shape == (gaussian.in_sr.sum(),)


def test_score_refuses_training_events_and_can_use_single_folds(gaussian):
    """Fitted events are refused; `fold=` scores with single fold models."""
    det = CWoLa(classifier_params=HGB, random_state=0).fit(gaussian.X, gaussian.mjj, gaussian.in_sr)
    with pytest.raises(ValueError, match="3 of 3 events were used to fit"):
        det.score_samples(gaussian.X[[0, 5, 9]])
    new = gaussian_events(500, 0, seed=8).X
    per_fold = det.score_samples(new, fold=np.arange(len(new)) % 5)
    first = det.fold_models_[0](new[::5], None)
    np.testing.assert_array_equal(per_fold[::5], first)
    np.testing.assert_allclose(
        det.score_samples(new), np.mean([det.score_samples(new, fold=k) for k in range(5)], 0)
    )
    with pytest.raises(ValueError, match=r"fold ids 0\.\.4"):
        det.score_samples(new, fold=7)


def test_cathode_template_is_valid_and_sized(gaussian):
    """The template holds oversampling x n_SR valid events; invalid draws are counted."""

    class LeakyMAF(MAF):
        def sample(self, context, **kwargs):
            x = super().sample(context, **kwargs)
            x[::10] = np.nan
            return x

    det = CATHODE(
        density_model=LeakyMAF(**TINY_FLOW), oversampling=3, classifier_params=HGB, random_state=0
    )
    det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)
    n_sr = int(gaussian.in_sr.sum())
    assert det.reference_.shape == (3 * n_sr, 4)
    X_sb = gaussian.X[~gaussian.in_sr]
    assert (det.reference_ >= X_sb.min(0)).all()
    assert (det.reference_ <= X_sb.max(0)).all()
    assert det.n_invalid_template_ >= 3 * n_sr // 10


def test_anode_needs_mjj_and_detects_the_signal(gaussian):
    """ANODE's density ratio ranks the localised signal high; scoring needs mjj."""
    det = ANODE(density_params=TINY_FLOW, random_state=0).fit(
        gaussian.X, gaussian.mjj, gaussian.in_sr
    )
    assert roc_auc_score(gaussian.labels[gaussian.in_sr], det.oof_scores_) > 0.8
    with pytest.raises(ValueError, match="needs the events' mjj"):
        det.score_samples(gaussian_events(300, 0, seed=7).X)


def test_variational_autoencoder_flags_outliers(gaussian):
    """A VAE's reconstruction error ranks the off-distribution signal above background."""
    det = Autoencoder(variational=True, beta=0.1, training={"epochs": 15}, random_state=0)
    det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)
    assert roc_auc_score(gaussian.labels[gaussian.in_sr], det.oof_scores_) > 0.6


def test_unfitted_detector_refuses_to_score():
    """score() before fit() is a NotFittedError."""
    with pytest.raises(NotFittedError):
        CWoLa().score_samples(np.zeros((3, 4)))


def _window(gaussian: Events, **change: Any) -> dict[str, Any]:
    args = {"X": gaussian.X, "mjj": gaussian.mjj, "in_sr": gaussian.in_sr}
    return {**args, **change}


@pytest.mark.parametrize(
    ("detector", "change", "extra", "error", "match"),
    [
        (CWoLa(), {"mjj": np.ones(10)}, {}, ValueError, "mjj must have shape"),
        (CWoLa(), {"in_sr": np.ones(4300)}, {}, TypeError, "boolean mask"),
        (CWoLa(), {"in_sr": np.zeros(4300, bool)}, {}, ValueError, "signal region is empty"),
        (CWoLa(), {"in_sr": np.ones(4300, bool)}, {}, ValueError, "sidebands hold no events"),
        (CATHODE(), {"in_sr": np.ones(4300, bool)}, {}, ValueError, "sidebands hold no events"),
        (ANODE(), {"in_sr": np.ones(4300, bool)}, {}, ValueError, "sidebands hold no events"),
        (CWoLa(sideband_width=1e-4), {}, {}, ValueError, "no sideband event within"),
        (Idealized(), {}, {}, ValueError, "needs fit\\(..., background="),
        (Supervised(), {}, {}, ValueError, "needs fit\\(..., labels="),
        (CWoLa(), {}, {"labels": np.zeros(4300)}, ValueError, "does not use truth labels"),
        (Autoencoder(train_on="sr"), {}, {}, ValueError, "train_on must be"),
    ],
)
def test_bad_input_raises(gaussian, detector, change, extra, error, match):
    """Mismatched lengths, empty regions and missing inputs are clear errors."""
    assert len(gaussian.X) == 4300
    with pytest.raises(error, match=match):
        detector.fit(**_window(gaussian, **change), **extra)


def test_too_few_events_per_fold_and_nan_raise(gaussian):
    """A signal region too small for the folds, or NaN features, are reported with counts."""
    in_sr = np.zeros(len(gaussian.X), bool)
    in_sr[:12] = True
    with pytest.raises(ValueError, match="too few signal-region events for 5 folds: 12 events"):
        CWoLa().fit(gaussian.X, gaussian.mjj, in_sr)
    X = gaussian.X.copy()
    X[[1, 2], 0] = np.nan
    with pytest.raises(ValueError, match="NaN in 2 of 4300 rows"):
        CWoLa().fit(X, gaussian.mjj, gaussian.in_sr)
    labels = np.where(gaussian.in_sr, 0, 1)
    labels[np.flatnonzero(gaussian.in_sr)[:3]] = 1
    with pytest.raises(ValueError, match="every class needs at least 5"):
        Supervised().fit(gaussian.X, gaussian.mjj, gaussian.in_sr, labels=labels)


def test_density_model_by_name_or_instance():
    """'maf' params update the fast CPU defaults; instances are cloned and reseeded."""
    seed = np.random.SeedSequence(0)
    model = make_density_model("maf", {"n_transforms": 2}, seed)
    assert (model.n_transforms, model.hidden_features) == (2, FAST_MAF["hidden_features"])
    template = MAF(n_transforms=1, random_state=99)
    clone = make_density_model(template, None, seed)
    assert clone is not template
    assert clone.n_transforms == 1
    assert clone.random_state != 99
    with pytest.raises(ValueError, match="density_params apply to a density model given by name"):
        make_density_model(template, {"n_transforms": 2}, seed)
    with pytest.raises(TypeError, match="density_model must be a model name or a DensityModel"):
        make_density_model(object(), None, seed)


def test_reference_scores_are_out_of_fold_and_template_masses_kept(gaussian):
    """Each template event is scored by the fold model that left it out of training."""
    det = CATHODE(density_params=TINY_FLOW, classifier=SpyClassifier(), random_state=0)
    det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)
    scores = det.result_.reference.scores  # the spies assert no model scores its own training rows
    assert scores.shape == (len(det.reference_),)
    assert det.reference_mjj_.shape == (len(det.reference_),)
    low, high = gaussian.mjj[gaussian.in_sr].min(), gaussian.mjj[gaussian.in_sr].max()
    assert ((det.reference_mjj_ >= low) & (det.reference_mjj_ <= high)).all()
    for k, model in enumerate(det.fold_models_):
        assert rows(det.reference_[det.reference_fold_ == k]) <= model.classifier.scored_


def test_a_cut_passes_sideband_background_as_it_passes_sr_background():
    """Sideband events no fold model saw are scored by one model each, like the SR events.

    The features do not depend on mjj and there is no signal, so a cut fixed on the SR scores
    must keep the same share of the sidebands; the average of the fold models (a smoother
    function) would keep far fewer of them at a tight cut, a step at the SR edges.
    """
    rng = np.random.default_rng(3)
    n = 6000
    mjj = rng.uniform(2.9, 4.1, n)
    X = rng.normal(size=(n, 4))
    in_sr = (mjj > 3.3) & (mjj < 3.7)
    background = rng.normal(size=(3000, 4))
    det = make_detector("idealized", classifier_params={"n_models": 1}, random_state=0)
    scores = det.fit(X, mjj, in_sr, background=background).result_.scores
    for efficiency in (0.05, 0.01):
        cut = np.quantile(scores[in_sr], 1 - efficiency)
        passed = int(np.sum(scores[~in_sr] > cut))
        n_sb = int(np.sum(~in_sr))
        # a binomial test at the 0.1% level on the sideband pass count
        p = stats.binomtest(passed, n_sb, efficiency).pvalue
        assert p > 1e-3, (efficiency, passed / n_sb)
