"""What a fit hands the next stage (`result_`), scoring edge cases and the torch-free import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from anomaly import CATHODE, DETECTORS, CWoLa, Idealized, make_detector
from anomaly.results import DetectorResult
from tests.anomaly.conftest import TINY_FLOW, gaussian_events

HGB = {"n_models": 1, "max_iter": 50}


@pytest.fixture(scope="module")
def cwola(gaussian):
    return CWoLa(classifier_params=HGB, random_state=0).fit(
        gaussian.X, gaussian.mjj, gaussian.in_sr
    )


def test_result_of_a_sideband_classifier_has_no_external_reference(cwola, gaussian):
    """CWoLa's reference is rows of the window: their scores are already in `result_.scores`."""
    result = cwola.result_
    assert isinstance(result, DetectorResult)
    assert result.scores.shape == result.honest.shape == (len(gaussian.X),)
    assert result.reference is None
    assert result.n_seen == 0


def test_idealized_reference_carries_the_masses_it_was_given(gaussian):
    """The simulated background's masses travel in the record; without them it cannot calibrate."""
    background = gaussian_events(3000, 0, seed=5).sr()
    det = Idealized(classifier_params=HGB, random_state=0)
    det.fit(
        gaussian.X,
        gaussian.mjj,
        gaussian.in_sr,
        background=background.X,
        background_mjj=background.mjj,
    )
    reference = det.result_.reference
    assert reference.calibrates
    np.testing.assert_array_equal(reference.mjj, background.mjj)
    assert reference.scores.shape == (len(background.X),)
    without = Idealized(classifier_params=HGB, random_state=0)
    without.fit(gaussian.X, gaussian.mjj, gaussian.in_sr, background=background.X)
    assert not without.result_.reference.calibrates
    np.testing.assert_array_equal(without.result_.reference.scores, reference.scores)
    with pytest.raises(ValueError, match="background_mjj must have shape"):
        det.fit(
            gaussian.X,
            gaussian.mjj,
            gaussian.in_sr,
            background=background.X,
            background_mjj=background.mjj[:5],
        )


def test_score_samples_of_no_events_is_empty(cwola):
    """Scoring an empty table gives an empty array, not a back-end error."""
    assert cwola.score_samples(np.empty((0, 4))).shape == (0,)


def test_score_is_a_deprecated_alias(cwola):
    """`score` (promised by the README) still works but warns."""
    new = gaussian_events(200, 0, seed=8).X
    with pytest.warns(FutureWarning, match="use score_samples"):
        old = cwola.score(new)
    np.testing.assert_array_equal(old, cwola.score_samples(new))


def test_float32_copies_of_training_rows_are_refused(cwola, gaussian):
    """A cast to float32 does not hide that an event was used to fit the detector."""
    with pytest.raises(ValueError, match="4 of 4 events were used to fit"):
        cwola.score_samples(gaussian.X[:4].astype(np.float32))
    with pytest.raises(ValueError, match="2 of 3 events were used to fit"):
        cwola.score_samples(np.vstack([gaussian.X[:2], gaussian.X[:1] + 1e-3]).astype(np.float32))


@pytest.mark.parametrize("name", ["cathode", "anode", "cwola"])
def test_sideband_detectors_refuse_too_few_sideband_events(name, gaussian):
    """A detector learning the background in the sidebands needs more than a handful of them."""
    in_sr = gaussian.in_sr.copy()
    in_sr[np.flatnonzero(~in_sr)[5:]] = True
    det = make_detector(name, random_state=0)
    with pytest.raises(ValueError, match="the sidebands hold 5 events, too few"):
        det.fit(gaussian.X, gaussian.mjj, in_sr)


def test_cathode_reference_is_its_template(gaussian):
    """CATHODE's record carries the template, its masses and out-of-fold scores."""
    det = CATHODE(density_params=TINY_FLOW, classifier_params=HGB, random_state=0)
    det.fit(gaussian.X, gaussian.mjj, gaussian.in_sr)
    reference = det.result_.reference
    assert reference.X is det.reference_
    assert reference.mjj is det.reference_mjj_
    assert reference.scores.shape == (len(det.reference_),)
    assert det.density_model_ is det.reference_sample_.density_model


def test_registry_names_every_detector_and_resolves_classes():
    """The registry lists names without imports and gives the classes on lookup."""
    assert set(DETECTORS) == {
        "cathode",
        "lacathode",
        "anode",
        "ranode",
        "cwola",
        "idealized",
        "supervised",
        "autoencoder",
    }
    assert DETECTORS["cwola"] is CWoLa
    with pytest.raises(ValueError, match="unknown detector 'nope'"):
        make_detector("nope")


def test_import_anomaly_loads_no_torch():
    """The package and its registry of names import without torch or the generative models."""
    code = (
        "import sys, anomaly; names = list(anomaly.DETECTORS); "
        "loaded = [m for m in ('torch', 'nflows') if m in sys.modules]; "
        "assert not loaded, loaded; print(len(names))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "8"
