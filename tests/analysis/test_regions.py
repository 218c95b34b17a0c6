"""Signal regions, sidebands, counts and sliding windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.regions import InsufficientEventsError, Window, WindowCounts, sliding_windows

MJJ = np.array([2.9, 3.1, 3.29, 3.3, 3.5, 3.69, 3.7, 3.85, 3.95, 4.5])


def test_signal_region_is_closed_below_open_above():
    window = Window(3.3, 3.7)
    np.testing.assert_array_equal(np.flatnonzero(window.sr_mask(MJJ)), [3, 4, 5])


def test_all_outside_sidebands():
    window = Window(3.3, 3.7)
    assert window.counts(MJJ) == WindowCounts(n_sr=3, n_sb_low=3, n_sb_high=4)
    np.testing.assert_array_equal(window.sb_mask(MJJ), ~window.sr_mask(MJJ))


def test_adjacent_sidebands_of_given_width():
    window = Window(3.3, 3.7, sideband_width=0.2)
    np.testing.assert_array_equal(np.flatnonzero(window.sb_low_mask(MJJ)), [1, 2])
    np.testing.assert_array_equal(np.flatnonzero(window.sb_high_mask(MJJ)), [6, 7])
    counts = window.counts(pd.Series(MJJ))
    assert counts == (3, 2, 2)
    assert counts.n_sb == 4
    assert not (window.sr_mask(MJJ) & window.sb_mask(MJJ)).any()


def test_check_names_window_and_counts():
    window = Window(3.3, 3.7, sideband_width=0.2)
    assert window.check(MJJ, min_sr=3, min_sb=4) == (3, 2, 2)
    with pytest.raises(InsufficientEventsError, match=r"SR 3\.3-3\.7 TeV.*has 3 \(need 10\)"):
        window.check(MJJ, min_sr=10)
    with pytest.raises(ValueError, match=r"sidebands have 4 = 2 low \+ 2 high \(need 5\)"):
        window.check(MJJ, min_sb=5)
    with pytest.raises(InsufficientEventsError, match="signal region has 0"):
        Window(5.0, 5.5).check(MJJ)


def test_split_returns_region_rows():
    table = pd.DataFrame({"mjj": MJJ, "x": np.arange(len(MJJ))})
    regions = Window(3.3, 3.7, sideband_width=0.2).split(table)
    assert regions.sr["x"].tolist() == [3, 4, 5]
    assert regions.sb["x"].tolist() == [1, 2, 6, 7]
    with pytest.raises(KeyError, match="m_jj"):
        Window(3.3, 3.7).split(table, column="m_jj")


def test_names_are_readable():
    assert Window(3.3, 3.7).name == "SR 3.3-3.7 TeV"
    assert Window(3.3, 3.7, 0.2).name == "SR 3.3-3.7 TeV, SB 0.2 TeV"


def test_bad_windows_and_mjj_raise():
    with pytest.raises(ValueError, match="sr_low < sr_high"):
        Window(3.7, 3.3)
    with pytest.raises(ValueError, match="sideband_width"):
        Window(3.3, 3.7, sideband_width=0.0)
    with pytest.raises(ValueError, match="NaN or inf in 1 of 3"):
        Window(3.3, 3.7).counts([3.4, np.nan, 3.5])
    with pytest.raises(ValueError, match="one-dimensional"):
        Window(3.3, 3.7).sr_mask(np.ones((2, 2)))


def test_linear_windows_default_to_adjacent():
    windows = sliding_windows(3.0, 4.0, 0.4)
    edges = [(w.sr_low, w.sr_high) for w in windows]
    np.testing.assert_allclose(edges, [(3.0, 3.4), (3.4, 3.8)])


def test_linear_windows_overlap_with_smaller_step():
    windows = sliding_windows(3.0, 4.0, 0.4, 0.2, sideband_width=0.2)
    assert [w.sr_low for w in windows] == pytest.approx([3.0, 3.2, 3.4, 3.6])
    assert windows[-1].sr_high == pytest.approx(4.0)
    assert all(w.sideband_width == 0.2 for w in windows)
    assert len({w.name for w in windows}) == len(windows)


def test_log_windows_have_constant_relative_width():
    windows = sliding_windows(3.0, 5.0, 0.1, spacing="log")
    lows = np.array([w.sr_low for w in windows])
    highs = np.array([w.sr_high for w in windows])
    np.testing.assert_allclose(highs / lows, 1.1)
    np.testing.assert_allclose(lows[1:], highs[:-1])
    assert highs[-1] <= 5.0
    assert highs[-1] * 1.1 > 5.0  # no further window would fit


def test_sliding_window_errors():
    with pytest.raises(ValueError, match="no window"):
        sliding_windows(3.0, 3.2, 0.4)
    with pytest.raises(ValueError, match="spacing"):
        sliding_windows(3.0, 4.0, 0.2, spacing="quadratic")
    with pytest.raises(ValueError, match="positive"):
        sliding_windows(3.0, 4.0, 0.2, step=0.0)


def test_bin_masks_and_window_events_follow_the_window():
    window = Window(3.3, 3.7, sideband_width=0.2)
    edges = np.round(np.arange(2.8, 4.25, 0.1), 10)
    centres = 0.5 * (edges[1:] + edges[:-1])
    bins = window.bins(edges)
    np.testing.assert_allclose(centres[bins.sr], [3.35, 3.45, 3.55, 3.65])
    np.testing.assert_allclose(centres[bins.fit], [3.15, 3.25, 3.75, 3.85])
    np.testing.assert_array_equal(bins.fit_range, bins.sr | bins.fit)
    everything_else = Window(3.3, 3.7).bins(edges)
    np.testing.assert_array_equal(everything_else.fit, ~everything_else.sr)
    mjj = np.array([3.09, 3.1, 3.5, 3.89, 3.95])
    np.testing.assert_array_equal(window.mask(mjj), [False, True, True, True, False])
