"""The --stop-at of the long benchmarks: a night run crosses midnight, a bad time is refused."""

import datetime as dt

import pytest

from benchmarks.sic_vs_injection import stop_time

NOW = dt.datetime(2026, 12, 6, 23, 58, tzinfo=dt.UTC)


def test_a_time_later_today_is_today():
    assert stop_time("23:59", NOW) == NOW.replace(minute=59, second=0)


def test_a_time_already_past_is_tomorrow():
    assert stop_time("01:35", NOW) == dt.datetime(2026, 12, 7, 1, 35, tzinfo=dt.UTC)


def test_an_iso_time_is_taken_as_given_in_utc():
    assert stop_time("2026-12-06T12:00", NOW) == dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)


def test_a_bad_time_is_refused_with_its_text():
    with pytest.raises(ValueError, match="'soon'"):
        stop_time("soon", NOW)
