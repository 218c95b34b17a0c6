"""The closure check of a reference-calibrated background, and pyhf's backend left as found."""

import numpy as np
import pyhf
import pytest
from sklearn.metrics import roc_auc_score

from analysis.regions import Window
from analysis.stats.closure import CLOSURE_SIGMAS, reference_closure, separation
from analysis.stats.models import quiet_pyhf


def test_separation_is_the_roc_auc_with_ties_counted_half():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 20, 3000).astype(float)
    reference = rng.integers(0, 20, 5000).astype(float) + 0.5 * (rng.random(5000) < 0.3)
    sep = separation(data, reference)
    labels = np.r_[np.ones(data.size), np.zeros(reference.size)]
    assert sep.auc == pytest.approx(roc_auc_score(labels, np.r_[data, reference]), abs=1e-12)
    assert (sep.n_data, sep.n_reference) == (3000, 5000)


def test_a_reference_closes_within_what_the_excess_allows():
    rng = np.random.default_rng(1)
    same = separation(rng.random(4000), rng.random(8000))
    shifted = separation(rng.random(4000) + 0.2, rng.random(8000))
    windows = [Window(3.3, 3.7), Window(3.5, 3.9)]
    observed = np.array([[4000.0, 400.0], [4000.0, 400.0]])
    background = np.array([[4000.0, 400.0], [4000.0, 400.0]])
    passed, failed = reference_closure([same, shifted], windows, observed, background)
    assert passed.passed
    assert passed.window == "SR 3.3-3.7 TeV"
    assert passed.auc_allowed == pytest.approx(0.5 + CLOSURE_SIGMAS * same.error)
    assert not failed.passed
    # An excess of a third of the SR events allows an AUC up to 0.5 + 1/6.
    excess = background + np.array([[0.0, 1400.0], [0.0, 1400.0]])
    _, explained = reference_closure([same, shifted], windows, excess, background)
    assert explained.auc_allowed == pytest.approx(0.5 + 0.5 * 1400 / 4000 + 5 * shifted.error)
    assert explained.passed


def test_quiet_pyhf_restores_the_callers_backend():
    import torch

    # pyhf's torch backend sets torch's default dtype (to float32 at 32b, torch's own default):
    # a test must not leave float64 behind for the torch tests after it.
    dtype = torch.get_default_dtype()
    pyhf.set_backend("pytorch", "minuit", precision="32b")
    try:
        with quiet_pyhf():
            assert pyhf.tensorlib.name == "numpy"
        assert pyhf.tensorlib.name == "pytorch"
        assert pyhf.optimizer.name == "minuit"
    finally:
        pyhf.set_backend("numpy", "scipy")
        torch.set_default_dtype(dtype)
