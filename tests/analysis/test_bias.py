"""Bias tests of the signal-yield fit (pulls at 0, 2, 5 sigma injected) and the F-test record."""

import dataclasses

import numpy as np
import pytest

import analysis.stats.bias as bias_module
from analysis.stats.bias import bias_test
from tests.analysis.test_limits import CONFIG, spectra

#: a signal of width 0.05 TeV: the 0.4 TeV signal region holds +-4 sigma of it. (A wider one
#: leaks into the sidebands, whose fit absorbs it: benchmarks/bias_ftest.py measures that.)
NARROW = dataclasses.replace(CONFIG, resolution=0.015)


def test_pulls_have_mean_zero_and_unit_width_when_the_signal_stays_in_the_window():
    """1000 pseudo-data sets per injection: mean error 0.03, width error 0.02 (CASE: 0.1)."""
    result = bias_test(spectra(0.0), 0, 0.1, NARROW, n_toys=1000, random_state=2)
    assert [i.injected_sigma for i in result.injections] == [0.0, 2.0, 5.0]
    for pulls in result.injections:
        assert pulls.n_toys > 990
        assert abs(pulls.mean_pull) < 0.1, pulls
        assert abs(pulls.width - 1) < 0.1, pulls
    assert result.passed
    assert result.ftest_n_params in (3, 4, 5)
    assert len(result.ftest_p_values) >= 1
    assert result.to_dict()["passed"] is True


def test_bias_test_fails_when_the_yield_errors_are_underestimated(monkeypatch):
    """Broken on purpose: errors scaled by 0.8 give pulls of width 1.25."""
    original = bias_module.fit_signal_yields

    def overconfident(*args, **kwargs):
        fitted, error = original(*args, **kwargs)
        return fitted, 0.8 * error

    monkeypatch.setattr(bias_module, "fit_signal_yields", overconfident)
    result = bias_test(spectra(0.0), 0, 0.1, NARROW, n_toys=1000, random_state=2)
    assert not result.passed
    assert all(i.width > 1.1 for i in result.injections)


def test_same_seed_same_pulls_and_bad_arguments():
    a = bias_test(spectra(0.0), 1, 0.1, NARROW, n_toys=50, random_state=4)
    b = bias_test(spectra(0.0), 1, 0.1, NARROW, n_toys=50, random_state=4)
    assert a == b
    with pytest.raises(ValueError, match="not one of"):
        bias_test(spectra(0.0), 0, 0.3, NARROW)
    with pytest.raises(ValueError, match="n_toys"):
        bias_test(spectra(0.0), 0, 0.1, NARROW, n_toys=3)
    assert np.isfinite(a.sigma_events)
