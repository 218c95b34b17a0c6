"""Amplification study: quantile discrepancies and the amplification factor on known cases."""

import numpy as np
import pytest

from generative.calo.amplification import (
    amplification_study,
    quantile_discrepancy,
    quantile_edges,
)


def test_quantile_edges_split_the_truth_evenly():
    truth = np.random.default_rng(0).normal(size=10_000)
    edges = quantile_edges(truth, 10)
    assert edges.shape == (9,)
    counts = np.bincount(np.searchsorted(edges, truth, side="right"))
    assert counts.min() >= 999
    assert counts.max() <= 1001


def test_discrepancy_known_values():
    edges, shares = np.array([0.0]), np.array([0.5, 0.5])
    # every event below the edge: p = (1, 0) against q = (1/2, 1/2)
    sample = -np.ones(10)
    assert quantile_discrepancy(sample, edges, shares, "chi2") == pytest.approx(1.0)
    assert quantile_discrepancy(sample, edges, shares, "mse") == pytest.approx(0.25)
    jsd = 0.5 * np.log(4 / 3) + 0.25 * (np.log(2 / 3) + np.log(2))
    assert quantile_discrepancy(sample, edges, shares, "jsd") == pytest.approx(jsd)
    balanced = np.array([-1.0, 1.0])
    for metric in ("chi2", "mse", "jsd"):
        assert quantile_discrepancy(balanced, edges, shares, metric) == pytest.approx(0.0)


def test_truth_samples_follow_the_chi2_expectation():
    rng = np.random.default_rng(1)
    truth, training = rng.normal(size=100_000), rng.normal(size=2000)
    result = amplification_study(rng.normal(size=20_000), training, truth, n_bins=20, n_repeats=20)
    # E[chi2 per event] = (n_bins - 1) / N: the fitted slope should be 19 within 15%
    assert result.truth_slope == pytest.approx(19.0, rel=0.15)
    # the training set is worth about itself (one chi2 draw with 19 d.o.f. scatters by 30%)
    assert 2000 / 3 < result.training_equivalent_size < 2000 * 3


@pytest.mark.parametrize("metric", ["chi2", "jsd"])
def test_perfect_generator_is_worth_all_its_events(metric):
    rng = np.random.default_rng(2)
    truth, training = rng.normal(size=200_000), rng.normal(size=1000)
    result = amplification_study(rng.normal(size=20_000), training, truth, metric=metric, n_bins=50)
    # expected 20 (20000 generated vs 1000 training events); one draw of a 49 d.o.f. discrepancy
    # and the 100k-event reference half of the truth scatter it: 99% of seeds give 11 to 40
    assert 8 < result.amplification < 80
    assert result.asymptotic_amplification > 8


def test_biased_generator_is_worth_fewer_events_than_its_training_set():
    rng = np.random.default_rng(3)
    truth, training = rng.normal(size=200_000), rng.normal(size=1000)
    result = amplification_study(rng.normal(0.3, 1.0, 20_000), training, truth)
    # a 0.3 sigma shift leaves a chi2 floor near 0.09 against 19/1000 for the training set
    assert result.generated_floor == pytest.approx(0.09, rel=0.25)
    assert result.amplification < 0.5
    assert result.asymptotic_amplification < 0.5
    assert result.equivalent_sizes.shape == result.sizes.shape


def test_study_is_seeded():
    rng = np.random.default_rng(4)
    args = (rng.normal(size=5000), rng.normal(size=500), rng.normal(size=50_000))
    first, second = (
        amplification_study(*args, random_state=3),
        amplification_study(*args, random_state=3),
    )
    np.testing.assert_array_equal(first.generated_mean, second.generated_mean)
    assert first.amplification == second.amplification


def test_bad_input():
    rng = np.random.default_rng(5)
    gen, train, truth = rng.normal(size=500), rng.normal(size=100), rng.normal(size=5000)
    with pytest.raises(ValueError, match="1-D"):
        amplification_study(gen[:, None], train, truth)
    with pytest.raises(ValueError, match="NaN/inf in 1 of 100"):
        amplification_study(gen, np.r_[train[:-1], np.nan], truth)
    with pytest.raises(ValueError, match="sizes must lie"):
        amplification_study(gen, train, truth, sizes=np.array([10, 1000]))
    with pytest.raises(ValueError, match="n_repeats"):
        amplification_study(gen, train, truth, n_repeats=1)
    with pytest.raises(ValueError, match="unknown metric"):
        amplification_study(gen, train, truth, metric="ks")
    with pytest.raises(ValueError, match="repeated values"):
        quantile_edges(np.r_[np.zeros(900), rng.normal(size=100)], 10)
    with pytest.raises(ValueError, match="at least 40 truth events"):
        quantile_edges(np.arange(30.0), 20)
