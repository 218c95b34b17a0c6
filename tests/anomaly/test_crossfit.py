"""Sideband cross-fitting: no sideband event is scored by a copy whose template learned it."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly import CATHODE, LaCATHODE
from anomaly.events import row_hashes
from generative.flows import MAF
from tests.anomaly.conftest import TINY_FLOW

HGB = {"n_models": 1, "max_iter": 30}


def cross_fitted(cls: type[CATHODE], gaussian, seed: int = 0) -> CATHODE:
    det = cls(
        density_model=MAF(**TINY_FLOW),
        oversampling=2,
        classifier_params=HGB,
        n_folds=3,
        cross_fit=True,
        random_state=seed,
    )
    return det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)


@pytest.fixture(scope="module")
def fitted(gaussian) -> CATHODE:
    return cross_fitted(CATHODE, gaussian)


def test_each_copy_learns_the_sr_and_one_sideband_half(fitted, gaussian):
    half = fitted.sideband_half_
    assert set(np.unique(half[~gaussian.in_sr])) == {0, 1}
    assert (half[gaussian.in_sr] == -1).all()
    for h, copy in enumerate(fitted.copies_):
        seen = np.isin(row_hashes(gaussian.X), copy.seen_hashes_)
        np.testing.assert_array_equal(seen, gaussian.in_sr | (half == h))


def test_sideband_events_are_scored_by_one_fold_model_of_the_other_copy(fitted, gaussian):
    scores = fitted.result_.scores
    for h in (0, 1):
        rows = np.flatnonzero(fitted.sideband_half_ == h)
        other = fitted.copies_[1 - h]
        by_fold = np.array([m(gaussian.X[rows], gaussian.mjj[rows]) for m in other.fold_models_])
        assert np.isclose(by_fold, scores[rows]).any(axis=0).all()
        # and never by the copy that learned them (its scores differ)
        own = np.array(
            [m(gaussian.X[rows], gaussian.mjj[rows]) for m in fitted.copies_[h].fold_models_]
        )
        assert not np.isclose(own, scores[rows]).any(axis=0).all()
    assert fitted.result_.honest.all()


def test_sr_events_keep_one_copys_out_of_fold_score(fitted, gaussian):
    sr = fitted.result_.scores[gaussian.in_sr]
    np.testing.assert_array_equal(sr, fitted.oof_scores_)
    first, second = (c.oof_scores_ for c in fitted.copies_)
    from_first = sr == first
    assert (from_first | (sr == second)).all()
    assert 0.4 < from_first.mean() < 0.6
    # the fold ids point at the model that scored each event
    k = fitted.folds_.fold
    models = fitted.fold_models_
    X_sr = gaussian.X[gaussian.in_sr]
    for j in (0, len(models) - 1):
        rows = k == j
        np.testing.assert_allclose(models[j](X_sr[rows]), sr[rows])


def test_the_reference_holds_both_templates_and_their_tests(fitted):
    reference = fitted.result_.reference
    sizes = [len(c.result_.reference.X) for c in fitted.copies_]
    assert len(reference.X) == len(reference.scores) == len(reference.mjj) == sum(sizes)
    assert set(reference.quality) == {"sideband_half1", "sideband_half2"}
    assert reference.control is not None
    assert fitted.sideband_efficiency_ is not None


def test_same_seed_same_scores_and_lacathode_cross_fits_too(fitted, gaussian):
    again = cross_fitted(CATHODE, gaussian)
    np.testing.assert_array_equal(again.result_.scores, fitted.result_.scores)
    latent = cross_fitted(LaCATHODE, gaussian, seed=1)
    assert np.isfinite(latent.result_.scores).all()
    assert latent.result_.honest.all()


def test_a_shared_sideband_fit_is_refused(gaussian):
    det = CATHODE(cross_fit=True, sideband_fit=object(), random_state=0)
    with pytest.raises(ValueError, match="cannot use a shared sideband_fit"):
        det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)
