"""The conditional WGAN: moments in context bins, options, no likelihood, sliced Wasserstein."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from generative import DensityModel
from generative.gan import GAN, sliced_wasserstein
from tests.generative.test_flow_matching import assert_conditional_moments, conditional_gaussian

FAST = {"generator_features": 64, "critic_features": 64, "random_state": 0, "verbose": False}


def test_conditional_moments_in_context_bins():
    x, c = conditional_gaussian(10_000, seed=1)
    model = GAN(
        preprocessing="standard",
        training={"epochs": 40, "batch_size": 256, "learning_rate": 1e-3, "patience": 10},
        **FAST,
    ).fit(x, c)
    # Adversarial training has no likelihood to settle into and still oscillates a little
    # around the target after ~800 generator steps: means within 0.15 sigma, widths within 15%.
    assert_conditional_moments(model, mean_tol=0.15, std_tol=0.15)


@pytest.fixture(scope="module")
def small_data() -> tuple[np.ndarray, np.ndarray]:
    return conditional_gaussian(1_000, seed=0)


def test_log_prob_raises_a_clear_error(small_data):
    x, c = small_data
    model = GAN(training={"epochs": 1}, **FAST).fit(x, c)
    assert not model.has_log_prob
    with pytest.raises(NotImplementedError, match="log_prob is not available for GAN"):
        model.log_prob(x, c)


@pytest.mark.parametrize(
    "options",
    [
        {"spectral_norm": True},
        {"validation_metric": "critic", "ema_decay": None},
        {"gradient_penalty_center": 1.0, "n_critic": 1, "latent_dim": 2},
    ],
)
def test_options_train_and_round_trip(options, small_data, tmp_path):
    x, c = small_data
    model = GAN(training={"epochs": 2, "batch_size": 128}, **FAST, **options).fit(x, c)
    assert np.all(np.isfinite(model.history_.val_loss))
    loaded = DensityModel.load(model.save(tmp_path / "gan.pt"))
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(
        loaded.sample(c[:50], random_state=2), model.sample(c[:50], random_state=2)
    )


def test_validation_metrics_differ(small_data):
    x, c = small_data
    training = {"epochs": 2, "batch_size": 128}
    sliced = GAN(training=training, **FAST).fit(x, c).history_.val_loss
    critic = GAN(validation_metric="critic", training=training, **FAST).fit(x, c).history_.val_loss
    # Same seed, same training: only the monitored quantity differs. The sliced distance is a
    # non-negative distance; the critic's estimate is a difference of means.
    assert all(v > 0 for v in sliced)
    assert sliced != critic


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("validation_metric", "fid", "validation_metric must be one of"),
        ("n_critic", 0, "need n_critic >= 1"),
    ],
)
def test_invalid_option_is_named(option, value, message, small_data):
    x, c = small_data
    with pytest.raises(ValueError, match=message):
        GAN(**{option: value}, training={"epochs": 1}, verbose=False).fit(x, c)


def test_sliced_wasserstein_of_a_shift():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(100, 2, generator=gen, dtype=torch.float64)
    shift = torch.tensor([0.6, 0.8], dtype=torch.float64)
    assert sliced_wasserstein(a, a.clone(), generator=gen).item() == 0.0
    # Each projection of a shifted copy moves by exactly |shift . theta|, and E|cos| = 2/pi on
    # the circle; 20k random directions estimate that mean to 0.35%, so 2% is a 6 sigma bound.
    distance = sliced_wasserstein(a, a + shift, n_projections=20_000, generator=gen).item()
    assert distance == pytest.approx(shift.norm().item() * 2.0 / math.pi, rel=0.02)
    with pytest.raises(ValueError, match="same shape"):
        sliced_wasserstein(a, a[:10])
