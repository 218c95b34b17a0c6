"""The interface every anomaly detector shares, with honest out-of-fold scoring built in.

A detector is configured in `__init__` and fitted on the events of one search window: features
`X` (n, d), `mjj` (n,) in TeV and a boolean mask `in_sr` of the signal-region (SR) events; the
others are the window's sidebands (SB). `fit` splits the SR events into `n_folds` folds and fits
one model per fold on the other folds, so that `oof_scores_[i]`, the score of the i-th SR event,
comes from a model that never saw that event. `score_samples(X_new)` scores new events (a held-out
test set) with the average of the fold models, and refuses events the detector was fitted on:
their honest scores are the out-of-fold ones. Everything the next stage needs from a fit is one
record, `result_` (an `anomaly.results.DetectorResult`).
"""

from __future__ import annotations

import abc
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone

from anomaly.events import WindowEvents, check_window, row_hashes, sideband_events
from anomaly.kfold import MIN_EVENTS_PER_FOLD, FoldModel, fold_assignment, out_of_fold
from anomaly.results import DetectorResult, Reference, ReferenceSample
from generative.validation import check_array, check_is_fitted

__all__ = [
    "AnomalyDetector",
    "ClassifierDetector",
    "ClassifierFold",
    "ReferenceDetector",
    "WindowEvents",
    "check_window",
    "row_hashes",
    "sideband_events",
]


#: `_outside_folds` codes: no fold model trained on the row / every fold model did
UNSEEN, SEEN_BY_ALL = -1, -2


class AnomalyDetector(BaseEstimator, abc.ABC):
    """Base of all detectors: validation, seeding, k-fold out-of-fold scoring, `score_samples`.

    Fitted attributes: `result_` (the `DetectorResult` the next stage reads: a score for every
    row given to `fit`, SR rows out-of-fold and sideband rows by the fold model that did not
    train on them or, when none or all did, by one fold model drawn at random (by one model, as
    an SR event is, so that a cut passes SR and sideband background alike); which rows are honest,
    False for those every model saw in training, e.g. the sidebands of a sideband density model,
    whose scores are biased; and the detector's external background reference, if any),
    `oof_scores_` (one score per SR event, in input order; higher = more anomalous),
    `sr_indices_` (row of each SR event in the arrays given to `fit`), `folds_` (an `OutOfFold`
    record: each SR event's fold; `folds_.train_indices(k)` are the SR events fold model k
    trained on) and `fold_models_` (the fitted fold scorers).
    """

    #: whether `result_.reference` is a background sample of its own in the SR, with masses,
    #: whose pass fractions can stand for a cut's background efficiency (CATHODE, idealized)
    calibrates_background: bool = False
    #: whether `score_samples` needs the events' mjj (density-based detectors)
    needs_mjj: bool = False
    #: whether the fold models train on SR events; if not, one model serves every fold
    trains_on_sr: bool = True
    #: which of fit's optional inputs the method uses; passing another one is an error
    uses_background: bool = False
    uses_labels: bool = False

    def __init__(self, *, n_folds: int = 5, random_state: int | None = None) -> None:
        self.n_folds = n_folds
        self.random_state = random_state

    # -- what subclasses provide ------------------------------------------------------------------
    def _prepare(self, window: WindowEvents, seed: np.random.SeedSequence) -> None:
        """Learn what all folds share from data they will never score (e.g. a sideband model)."""

    @abc.abstractmethod
    def _fit_fold(
        self, window: WindowEvents, train: np.ndarray, fold: int, seed: np.random.SeedSequence
    ) -> FoldModel:
        """Fit a fold model on the SR events `train` (indices into the SR events) only."""

    def _outside_folds(self, window: WindowEvents) -> np.ndarray:
        """For each sideband row: the fold model that never trained on it, or UNSEEN/SEEN_BY_ALL."""
        return np.full(int((~window.in_sr).sum()), UNSEEN)

    def _stratify(self, window: WindowEvents) -> np.ndarray | None:
        """Labels of the SR events to stratify the folds by (None: plain shuffled folds)."""
        return None

    def _external_reference(self, window: WindowEvents) -> Reference | None:
        """The fitted background reference in the SR that is not rows of the window, if any."""
        return None

    # -- public API -----------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        mjj: Any,
        in_sr: Any,
        *,
        background: Any = None,
        labels: Any = None,
        background_mjj: Any = None,
    ) -> AnomalyDetector:
        """Fit on one window and score every SR event out-of-fold; the outcome is `result_`.

        `background` (features) and `background_mjj` (their masses, optional) are a simulated
        background sample in the SR for the detectors that use one; `labels` are truth labels.
        """
        name = type(self).__name__
        if background is not None and not self.uses_background:
            raise ValueError(f"{name} does not use a background sample; do not pass background=")
        if labels is not None and not self.uses_labels:
            raise ValueError(f"{name} does not use truth labels; do not pass labels=")
        window = check_window(X, mjj, in_sr, background, labels, background_mjj)
        prepare_seed, split_seed, fold_seed, outside_seed = self._seeds()
        fold = fold_assignment(
            int(window.in_sr.sum()), self.n_folds, split_seed, self._stratify(window)
        )
        self._prepare(window, prepare_seed)
        fold_seeds = fold_seed.spawn(self.n_folds)
        shared: list[FoldModel] = []

        def fit_fold(train: np.ndarray, k: int) -> FoldModel:
            if self.trains_on_sr:
                return self._fit_fold(window, train, k, fold_seeds[k])
            # The model never sees SR events, so one fit is out-of-fold for every event.
            if not shared:
                shared.append(self._fit_fold(window, train[:0], k, fold_seeds[0]))
            return shared[0]

        mjj_sr = window.mjj_sr if self.needs_mjj else None
        self.folds_, self.fold_models_ = out_of_fold(window.X_sr, mjj_sr, fold, fit_fold)
        self.oof_scores_ = self.folds_.scores
        self.sr_indices_ = np.flatnonzero(window.in_sr)
        outside_rng = np.random.default_rng(outside_seed)
        scores, honest = self._window_scores(window, outside_rng)
        self.result_ = DetectorResult(
            scores, honest, self._external_reference(window), self._diagnostics()
        )
        seen = [window.X] if window.background is None else [window.X, window.background]
        self.seen_hashes_ = np.unique(np.concatenate([row_hashes(a) for a in seen]))
        self.n_features_in_ = window.X.shape[1]
        return self

    def _seeds(self) -> list[np.random.SeedSequence]:
        """(prepare, split, fold, outside-scoring) seeds of a fit, from `random_state`."""
        return np.random.SeedSequence(self.random_state).spawn(4)

    def _diagnostics(self) -> dict[str, Any]:
        """What the fit learnt besides scores, as plain numbers for `result_.diagnostics`."""
        return {}

    def _window_scores(
        self, window: WindowEvents, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = np.empty(len(window.X))
        scores[window.in_sr] = self.oof_scores_
        honest = np.ones(len(window.X), dtype=bool)
        outside = np.flatnonzero(~window.in_sr)
        folds = self._outside_folds(window)
        honest[outside[folds == SEEN_BY_ALL]] = False
        # Rows without a fold model of their own (none, or every one, trained on them) are
        # scored by one drawn at random; the latter stay flagged as not honest.
        shared = folds < 0
        folds[shared] = self._random_folds(int(shared.sum()), rng)
        mjj = window.mjj if self.needs_mjj else None
        for k in np.unique(folds):
            rows = outside[folds == k]
            X, m = window.X[rows], None if mjj is None else mjj[rows]
            scores[rows] = self.fold_models_[k](X, m)
        return scores, honest

    def _random_folds(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """One fold model per event, in equal shares, for events no fold model trained on.

        An SR event is scored by one fold model; an average of models is a smoother function
        whose scores do not rank like one model's, so a cut fixed on SR scores would pass a
        different share of the same background elsewhere: a step in mjj at the SR edges.
        """
        return rng.permutation(n) % len(self.fold_models_)

    def _average(self, X: np.ndarray, mjj: np.ndarray | None) -> np.ndarray:
        models = {id(m): m for m in self.fold_models_}.values()
        return np.mean([m(X, mjj) for m in models], axis=0)

    def score_samples(self, X: Any, mjj: Any = None, *, fold: Any = None) -> np.ndarray:
        """Score new events (higher = more anomalous) with the average of the fold models.

        `fold` (an int, or one fold id per event) scores with that single fold model instead:
        use it when comparing with `oof_scores_`, which come from single fold models; an average
        of models is a smoother function whose scores do not rank like a single model's. Events
        the detector was fitted on (any row of the window or of the background sample) are
        refused: at least one fold model trained on each of them; use `oof_scores_`. No events
        give an empty array.
        """
        check_is_fitted(self, ("fold_models_",))
        X = check_array(X, "X", n_features=self.n_features_in_, allow_empty=True)
        if self.needs_mjj:
            if mjj is None:
                raise ValueError(f"{type(self).__name__} needs the events' mjj to score them")
            mjj = np.asarray(mjj, dtype=np.float64)
            if mjj.shape != (X.shape[0],):
                raise ValueError(f"mjj must have shape ({X.shape[0]},), got {mjj.shape}")
            check_array(mjj, "mjj", allow_empty=True)
        if fold is not None:
            fold = np.broadcast_to(np.asarray(fold), (X.shape[0],))
            if not np.isin(fold, np.arange(len(self.fold_models_))).all():
                raise ValueError(f"fold must hold fold ids 0..{len(self.fold_models_) - 1}")
        if X.shape[0] == 0:
            return np.empty(0)
        seen = np.isin(row_hashes(X), self.seen_hashes_)
        if seen.any():
            raise ValueError(
                f"{int(seen.sum())} of {X.shape[0]} events were used to fit this detector; "
                "their honest scores are the out-of-fold ones in oof_scores_"
            )
        if fold is None:
            return self._average(X, mjj)
        out = np.empty(X.shape[0])
        for k in np.unique(fold):
            rows = fold == k
            out[rows] = self.fold_models_[k](X[rows], None if mjj is None else mjj[rows])
        return out

    def score(self, X: Any, mjj: Any = None, *, fold: Any = None) -> np.ndarray:
        """Deprecated name of `score_samples` (in scikit-learn `score` is a scalar metric)."""
        warnings.warn(
            "AnomalyDetector.score is deprecated and will be removed; use score_samples",
            FutureWarning,
            stacklevel=2,
        )
        return self.score_samples(X, mjj, fold=fold)


def seed_int(seed: np.random.SeedSequence) -> int:
    """A 31-bit integer seed for libraries that take `random_state=int`."""
    return int(seed.generate_state(1)[0] >> 1)


@dataclass(frozen=True)
class ClassifierFold:
    """A fold model that scores events by a fitted classifier's class-1 probability."""

    classifier: Any

    def __call__(self, X: np.ndarray, mjj: np.ndarray | None = None) -> np.ndarray:
        """Probability that each event belongs to class 1 (SR data or signal)."""
        return self.classifier.predict_proba(X)[:, 1]


class ClassifierDetector(AnomalyDetector):
    """A detector whose fold models are classifiers; the back-end is a name or an estimator.

    `classifier` is 'hgb' or 'mlp' (see `anomaly.classifiers`) with `classifier_params`, or an
    unfitted estimator with `fit(X, y)` and `predict_proba(X)`, cloned for every fold.
    """

    def __init__(
        self,
        *,
        classifier: str | Any = "hgb",
        classifier_params: dict[str, Any] | None = None,
        n_folds: int = 5,
        random_state: int | None = None,
    ) -> None:
        super().__init__(n_folds=n_folds, random_state=random_state)
        self.classifier = classifier
        self.classifier_params = classifier_params

    @abc.abstractmethod
    def _training_set(
        self, window: WindowEvents, train: np.ndarray, fold: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features and 0/1 labels a fold classifier learns from (SR events `train` only)."""

    def _make_classifier(self, seed: np.random.SeedSequence) -> Any:
        if isinstance(self.classifier, str):
            # Imported here: the torch back-end must not load with the package.
            from anomaly.classifiers import make_classifier

            return make_classifier(
                self.classifier, **(self.classifier_params or {}), random_state=seed_int(seed)
            )
        if self.classifier_params:
            raise ValueError("classifier_params apply to a classifier given by name only")
        estimator = clone(self.classifier)
        if "random_state" in estimator.get_params():
            estimator.set_params(random_state=seed_int(seed))
        return estimator

    def _fit_fold(
        self, window: WindowEvents, train: np.ndarray, fold: int, seed: np.random.SeedSequence
    ) -> FoldModel:
        X, y = self._training_set(window, train, fold)
        return ClassifierFold(self._make_classifier(seed).fit(X, y))


class ReferenceDetector(ClassifierDetector):
    """Weak supervision: SR data (class 1) against a reference sample of background (class 0).

    The reference (sidebands, a sampled template or a simulated background) is split into the
    same number of folds at random; fold model k trains on the SR data and the reference outside
    fold k, so the class ratio of every fold equals that of the whole window. Fitted attributes
    besides the base ones: `reference_sample_` (what `_reference` drew; its events are also
    `reference_`, their masses `reference_mjj_`, None when unknown) and `reference_fold_` (each
    reference event's fold).
    """

    @abc.abstractmethod
    def _reference(self, window: WindowEvents, seed: np.random.SeedSequence) -> ReferenceSample:
        """Background-like events the SR data are compared with."""

    def _reference_rows(self, window: WindowEvents) -> np.ndarray | None:
        """Rows of the window the reference consists of, in order (None: not window rows)."""
        return None

    @property
    def reference_(self) -> np.ndarray:
        """The reference events (features) of the fit."""
        return self.reference_sample_.X

    @property
    def reference_mjj_(self) -> np.ndarray | None:
        """Masses of the reference events (TeV), None when the detector was not told them."""
        return self.reference_sample_.mjj

    def _external_reference(self, window: WindowEvents) -> Reference | None:
        # A reference of its own (a template, a simulated background) in the SR, scored by the
        # fold model that left each event out: its pass fractions calibrate a cut's background.
        if self._reference_rows(window) is not None:
            return None
        scores = np.empty(len(self.reference_))
        mjj = self.reference_mjj_
        for k, model in enumerate(self.fold_models_):
            rows = self.reference_fold_ == k
            scores[rows] = model(self.reference_[rows], None if mjj is None else mjj[rows])
        return Reference(self.reference_, mjj, scores)

    def _outside_folds(self, window: WindowEvents) -> np.ndarray:
        folds = super()._outside_folds(window)
        rows = self._reference_rows(window)
        if rows is not None:
            # Sideband rows in the reference are honest for the one fold model that left them out.
            position = np.full(len(window.X), -1)
            position[np.flatnonzero(~window.in_sr)] = np.arange(len(folds))
            folds[position[rows]] = self.reference_fold_
        return folds

    def _prepare(self, window: WindowEvents, seed: np.random.SeedSequence) -> None:
        ref_seed, split_seed = seed.spawn(2)
        sample = self._reference(window, ref_seed)
        if len(sample.X) < self.n_folds * MIN_EVENTS_PER_FOLD:
            raise ValueError(
                f"too few reference events for {self.n_folds} folds: {len(sample.X)}, need at "
                f"least {self.n_folds * MIN_EVENTS_PER_FOLD}"
            )
        rng = np.random.default_rng(split_seed)
        self.reference_fold_ = rng.permutation(len(sample.X)) % self.n_folds
        self.reference_sample_ = sample

    def _training_set(
        self, window: WindowEvents, train: np.ndarray, fold: int
    ) -> tuple[np.ndarray, np.ndarray]:
        data = window.X_sr[train]
        reference = self.reference_[self.reference_fold_ != fold]
        y = np.concatenate([np.ones(len(data)), np.zeros(len(reference))])
        return np.concatenate([data, reference]), y
