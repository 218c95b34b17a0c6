"""Duplicate events: exact and near-exact twins found within and across sources."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.data.duplicates import NEAR_RTOL, describe, find_duplicates


@pytest.fixture
def events():
    return np.random.default_rng(0).normal(size=(5_000, 6))


def test_distinct_events_have_no_twins(events):
    found = find_duplicates(events)
    assert found.n_repeated == 0
    assert len(np.unique(found.groups)) == len(events)


@pytest.mark.parametrize(
    ("relative", "twin"),
    [(0.0, True), (0.1 * NEAR_RTOL, True), (0.9 * NEAR_RTOL, True), (10 * NEAR_RTOL, False)],
)
def test_twins_within_the_tolerance_in_every_column(events, relative, twin):
    copy = events[:300] * (1 + relative)
    found = find_duplicates(np.r_[events, copy])
    assert found.n_repeated == (300 if twin else 0)
    if twin:
        np.testing.assert_array_equal(found.groups[:300], found.groups[5_000:])


def test_one_column_apart_is_not_a_twin(events):
    copy = events[:100].copy()
    copy[:, 3] += 1e-3
    assert find_duplicates(np.r_[events, copy]).n_repeated == 0


def test_float32_round_trip_and_ties_in_other_columns(events):
    events[:, 0] = np.round(events[:, 0])  # a column full of ties is never the sort key
    copy = events[:50].astype(np.float32).astype(np.float64)
    assert find_duplicates(np.r_[events, copy]).n_repeated == 50


def test_groups_of_three_and_the_files_they_span(events):
    values = np.r_[events[:10], events[:10], events[:10], events[10:20]]
    sources = np.repeat([0, 1, 1, 2], 10)
    found = find_duplicates(values, sources)
    assert found.n_repeated == 20
    assert len(np.unique(found.groups)) == 20
    assert found.by_files == {(0, 1): 20}
    assert describe(found, ["a.h5", "b.h5", "c.h5"]).startswith("20 events are duplicates")
