"""How well a sampled background template matches the data it stands for, as measured numbers.

A two-sample classifier test trains a classifier to tell data from template events out-of-fold;
its AUC is 0.5 for a perfect template, and the null standard error says how far from 0.5 chance
alone takes it. CATHODE runs it where no signal is expected (held-out sideband data against the
model's samples at the same masses) and in the situation of the signal region (a model fitted on
the outer sidebands only, tested in the inner sidebands next to the signal region).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from anomaly.auc import auc_null_error
from anomaly.classifiers import make_classifier
from anomaly.kfold import fold_assignment
from anomaly.results import ControlSample

__all__ = [
    "EfficiencyClosure",
    "TwoSampleTest",
    "auc_null_error",
    "efficiency_closure",
    "two_sample_auc",
]


@dataclass(frozen=True)
class TwoSampleTest:
    """Out-of-fold AUC of a classifier telling sample A (class 1) from sample B (class 0)."""

    auc: float
    #: standard error of the AUC under the null hypothesis that both samples share a distribution
    error: float
    n_a: int
    n_b: int

    @property
    def z(self) -> float:
        """Distance of the AUC from 0.5 in null standard errors."""
        return (self.auc - 0.5) / self.error

    def to_dict(self) -> dict[str, Any]:
        """Plain-number form for JSON."""
        return {**asdict(self), "z": self.z}


def two_sample_auc(
    a: np.ndarray,
    b: np.ndarray,
    *,
    classifier: str = "hgb",
    classifier_params: dict[str, Any] | None = None,
    n_folds: int = 5,
    random_state: int | None = None,
) -> TwoSampleTest:
    """Two-sample classifier test of A against B: every event is scored by a fold that left it out.

    Class weights are balanced, so the AUC does not depend on the sample sizes; the classifier
    back-ends are those of the detectors ('hgb' by default, with 3 seeds per fold).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"samples must be 2-d with the same features, got {a.shape} and {b.shape}")
    X = np.concatenate([a, b])
    y = np.r_[np.ones(len(a)), np.zeros(len(b))]
    seeds = np.random.SeedSequence(random_state)
    fold_seed, model_seed = seeds.spawn(2)
    fold = fold_assignment(len(y), n_folds, fold_seed, y, what="two-sample events")
    params = {"n_models": 3} if classifier == "hgb" else {}
    params.update(classifier_params or {})
    scores = np.empty(len(y))
    for k, seed in enumerate(model_seed.spawn(n_folds)):
        test = fold == k
        model = make_classifier(
            classifier, **params, random_state=int(seed.generate_state(1)[0])
        ).fit(X[~test], y[~test])
        scores[test] = model.predict_proba(X[test])[:, 1]
    auc = float(roc_auc_score(y, scores))
    return TwoSampleTest(auc, auc_null_error(len(a), len(b)), len(a), len(b))


@dataclass(frozen=True)
class EfficiencyClosure:
    """Cut efficiencies of data and template where no signal is expected, per target efficiency.

    Each cut is the score threshold that keeps `efficiency` of the signal-region template; the
    ratio data/template of the fractions passing it on held-out sideband events (both at the
    same masses) measures how far the template's efficiency, which calibrates the background in
    the signal region, is off. `ratio_error` is the binomial error of that ratio (pass counts
    floored at one event, so both stay finite when nothing passes).
    """

    efficiencies: tuple[float, ...]
    thresholds: tuple[float, ...]
    data_efficiency: tuple[float, ...]
    template_efficiency: tuple[float, ...]
    ratio: tuple[float, ...]
    ratio_error: tuple[float, ...]
    n_data: int
    n_template: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-number form for JSON."""
        return asdict(self)


def efficiency_closure(
    reference_scores: np.ndarray,
    data_scores: np.ndarray,
    template_scores: np.ndarray,
    efficiencies: tuple[float, ...] = (0.1, 0.01, 0.002),
) -> EfficiencyClosure:
    """Pass fractions of held-out data and template at the cuts keeping `efficiencies` of the
    signal-region template (`reference_scores`), their ratio and its binomial error (pass
    counts floored at one event, `anomaly.results.ControlSample.pass_ratio`)."""
    if not len(data_scores) or not len(template_scores):
        raise ValueError("the efficiency closure needs held-out data and template events")
    thresholds = np.quantile(reference_scores, 1.0 - np.asarray(efficiencies, dtype=float))
    ratio, error = ControlSample(data_scores, template_scores).pass_ratio(thresholds)
    return EfficiencyClosure(
        tuple(efficiencies),
        tuple(float(t) for t in thresholds),
        tuple(float(np.mean(data_scores > t)) for t in thresholds),
        tuple(float(np.mean(template_scores > t)) for t in thresholds),
        tuple(float(r) for r in ratio),
        tuple(float(e) for e in error),
        len(data_scores),
        len(template_scores),
    )
