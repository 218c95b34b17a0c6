"""One sideband fit shared by the density detectors gives each the results of fitting its own."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly import make_detector
from anomaly.sideband import SidebandFit
from generative.estimator import CorruptFileError
from tests.anomaly.conftest import SMALL_HGB, TINY_FLOW, gaussian_events

DENSITY = {
    "cathode": {"classifier_params": SMALL_HGB},
    "lacathode": {"classifier_params": SMALL_HGB},
    "anode": {},
    "ranode": {"signal_training": {"epochs": 2}},
}


@pytest.fixture(scope="module")
def events():
    """A small window with a signal."""
    return gaussian_events(3000, 150, seed=4)


def detector(name: str, **params):
    """A density detector with the tiny test flow, two folds and seed 7."""
    return make_detector(
        name, density_params=TINY_FLOW, n_folds=2, random_state=7, **DENSITY[name], **params
    )


@pytest.fixture(scope="module")
def shared(events) -> SidebandFit:
    """The sideband fit of a CATHODE with the common seed."""
    return detector("cathode").fit_sideband(events.X, events.mjj, events.in_sr)


@pytest.mark.parametrize("name", list(DENSITY))
def test_a_shared_sideband_fit_changes_no_result(name, events, shared):
    alone = detector(name).fit(events.X, events.mjj, events.in_sr)
    given = detector(name, sideband_fit=shared).fit(events.X, events.mjj, events.in_sr)
    assert given.sideband_fit_ is shared
    # The same model was fitted alone: same seeds, same held-out sideband events.
    np.testing.assert_array_equal(alone.sideband_fit_.held_out, shared.held_out)
    probe = events.X[:200], events.mjj[:200, None]
    np.testing.assert_array_equal(
        alone.sideband_fit_.model.log_prob(*probe), shared.model.log_prob(*probe)
    )
    np.testing.assert_array_equal(alone.oof_scores_, given.oof_scores_)
    np.testing.assert_array_equal(alone.result_.scores, given.result_.scores)
    if alone.result_.reference is not None:
        np.testing.assert_array_equal(alone.result_.reference.X, given.result_.reference.X)


def test_the_fit_records_its_cost_and_holds_out_unseen_sidebands(events, shared):
    n_sideband = int((~events.in_sr).sum())
    assert 0 < len(shared.held_out) < n_sideband
    assert shared.held_out.max() < n_sideband
    assert shared.seconds > 0
    assert shared.cpu_seconds > 0


def test_another_seed_fits_another_model(events, shared):
    other = make_detector("anode", density_params=TINY_FLOW, random_state=8).fit_sideband(
        events.X, events.mjj, events.in_sr
    )
    probe = events.X[:200], events.mjj[:200, None]
    assert not np.array_equal(other.model.log_prob(*probe), shared.model.log_prob(*probe))


@pytest.mark.parametrize("name", ["cathode", "ranode"])
def test_a_fit_restored_from_bytes_gives_the_same_results(name, events, shared):
    restored = SidebandFit.from_bytes(shared.to_bytes())
    np.testing.assert_array_equal(restored.held_out, shared.held_out)
    assert (restored.digest, restored.cpu_seconds) == (shared.digest, shared.cpu_seconds)
    original = detector(name, sideband_fit=shared).fit(events.X, events.mjj, events.in_sr)
    again = detector(name, sideband_fit=restored).fit(events.X, events.mjj, events.in_sr)
    np.testing.assert_array_equal(original.result_.scores, again.result_.scores)


def test_a_damaged_or_foreign_fit_file_is_refused(shared):
    data = bytearray(shared.to_bytes())
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(CorruptFileError, match="checksum"):
        SidebandFit.from_bytes(bytes(data), source="fit.bin")
    with pytest.raises(CorruptFileError, match="not a resonance-search sideband fit"):
        SidebandFit.from_bytes(shared.model.to_bytes(), source="model.bin")
