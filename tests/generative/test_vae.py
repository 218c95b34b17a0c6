"""The conditional VAE: moments in context bins and the importance-weighted likelihood bound."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from generative.vae import VAE
from tests.generative.test_flow_matching import (
    assert_conditional_moments,
    conditional_gaussian,
    true_moments,
)


@pytest.fixture(scope="module")
def fitted() -> VAE:
    x, c = conditional_gaussian(10_000, seed=1)
    return VAE(
        hidden_features=64,
        n_layers=2,
        preprocessing="standard",
        training={"epochs": 30, "batch_size": 256, "learning_rate": 3e-3, "patience": 8},
        random_state=0,
        verbose=False,
    ).fit(x, c)


def test_conditional_moments_in_context_bins(fitted):
    # A Gaussian decoder contains the true conditional law, so the VAE can match it as well as
    # flow matching: means within 0.1 sigma, widths within 10%.
    assert_conditional_moments(fitted, mean_tol=0.1, std_tol=0.1)


def _true_log_prob(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    mean, std = true_moments(c)
    return (-0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)).sum(axis=1)


def test_log_prob_is_near_the_truth_and_deterministic(fitted):
    x, c = conditional_gaussian(2_000, seed=7)
    bound = fitted.log_prob(x, c)
    np.testing.assert_array_equal(bound, fitted.log_prob(x, c))  # seeded importance samples
    error = bound - _true_log_prob(x, c)
    # A KL of a few hundredths of a nat after training: the mean error is that small.
    assert abs(error.mean()) < 0.05
    assert np.mean(np.abs(error)) < 0.1


def test_importance_weighted_bound_tightens_with_more_samples():
    # After one epoch the encoder is far from the posterior, so the bound has a visible gap;
    # E[log p_K] grows with K (Burda et al.), clearly so when averaged over 2000 events.
    x, c = conditional_gaussian(2_000, seed=3)
    model = VAE(
        hidden_features=32, n_layers=2, training={"epochs": 1}, random_state=0, verbose=False
    ).fit(x, c)
    elbo = copy.deepcopy(model).set_params(n_importance=1).log_prob(x, c)
    assert model.log_prob(x, c).mean() > elbo.mean()


def test_invalid_option_is_named():
    x, c = conditional_gaussian(200, seed=0)
    with pytest.raises(ValueError, match="need latent_dim >= 1"):
        VAE(latent_dim=0, training={"epochs": 1}, verbose=False).fit(x, c)
