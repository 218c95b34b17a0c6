"""Submission checks: a file the challenge's evaluate.py would read, with meaningful content."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from generative.calo.io import ShowerData, write_showers
from generative.calo.submission import check_submission
from tests.calo.conftest import fast_shower_model


def write_raw(path, energies, showers):
    with h5py.File(path, "w") as f:
        f.create_dataset("incident_energies", data=energies)
        f.create_dataset("showers", data=showers)
    return path


def test_generated_showers_are_a_valid_submission_for_their_request(
    tmp_path, tiny_geometry, tiny_data
):
    model = fast_shower_model("caloflow_inn", tiny_geometry)
    model.fit(tiny_data.showers, tiny_data.energies)
    request = write_showers(tmp_path / "request.h5", tiny_data.take(slice(0, 100)))
    energies = tiny_data.energies[:100]
    generated = ShowerData(energies=energies, showers=model.sample(energies, random_state=0))
    path = write_showers(tmp_path / "gen.h5", generated)
    check = check_submission(path, tiny_geometry, request=request)
    assert check.valid, check.problems
    assert check.dtypes == {"incident_energies": "float32", "showers": "float32"}
    assert check.n_events == 100


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e, s: (e[:, 0], s), "expected (N, 1)"),
        (lambda e, s: (e, s[:, :-1]), "expected (N, 8)"),
        (lambda e, s: (e, np.where(np.arange(8) == 3, np.nan, s)), "NaN"),
        (lambda e, s: (e, -s), "negative"),
        (lambda e, s: (e, s / 1e3), "not MeV"),
        (lambda e, s: (e, s.astype(np.int32)), "dtype int32"),
        (lambda e, s: (e * 2, s * 2), "differ from the request"),
        (lambda e, s: (e[:-1], s[:-1]), "for a request of"),
    ],
)
def test_each_kind_of_broken_submission_is_named(
    tmp_path, tiny_geometry, tiny_data, mutate, message
):
    data = tiny_data.take(slice(0, 50))
    request = write_showers(tmp_path / "request.h5", data)
    energies, showers = mutate(data.energies.reshape(-1, 1), data.showers)
    path = write_raw(tmp_path / "bad.h5", energies, showers)
    check = check_submission(path, tiny_geometry, request=request)
    assert not check.valid
    assert any(message in p for p in check.problems), check.problems


def test_a_file_without_the_challenge_datasets_is_refused(tmp_path, tiny_geometry):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("energy", data=np.ones((3, 1)))
    check = check_submission(tmp_path / "x.h5", tiny_geometry)
    assert check.problems == [
        "lacks the dataset 'incident_energies'",
        "lacks the dataset 'showers'",
    ]
