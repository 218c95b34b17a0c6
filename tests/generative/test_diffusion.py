"""Denoising diffusion: moments per sampler, schedule, likelihood by the probability-flow ODE."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from generative.diffusion import Diffusion, NoiseSchedule
from tests.generative.test_flow_matching import (
    assert_conditional_moments,
    assert_density_integrates_to_one,
    assert_log_prob_matches_gaussian,
    conditional_gaussian,
    correlated_gaussian,
)

FAST = {"hidden_features": 64, "n_blocks": 2, "random_state": 0, "verbose": False}
# No early stopping: the cosine learning-rate decay runs to its end, which the noisy diffusion
# loss needs to settle.
TRAINING = {"epochs": 30, "batch_size": 256, "learning_rate": 3e-3, "patience": None}
#: a third of the optimiser steps: enough for velocity prediction (worst errors 0.05 sigma and
#: 8% over the samplers), not for noise prediction, whose widths then miss by up to 40%
QUICK_TRAINING = {**TRAINING, "epochs": 20, "batch_size": 512}


@pytest.fixture(scope="module")
def fitted() -> Diffusion:
    x, c = conditional_gaussian(10_000, seed=1)
    return Diffusion(preprocessing="standard", training=QUICK_TRAINING, **FAST).fit(x, c)


# The network learns the score only approximately in 20 epochs and the samplers discretise
# its ODE / SDE: means within 0.15 sigma and widths within 15%. Wrong schedule or sampler
# algebra shows up as errors of order one (e.g. the width off by a factor 2 or more).
@pytest.mark.parametrize(
    ("sampler", "steps", "solver"),
    [("ddim", 50, "rk4"), ("ancestral", 100, "rk4"), ("ode", 20, "rk4")],
)
def test_conditional_moments_for_every_sampler(fitted, sampler, steps, solver):
    model = copy.deepcopy(fitted).set_params(sampler=sampler, steps=steps, solver=solver)
    assert_conditional_moments(model, mean_tol=0.15, std_tol=0.15)


def test_noise_prediction_with_the_linear_schedule():
    # The original DDPM recipe (eps prediction, linear betas) with ancestral and DDIM steps.
    x, c = conditional_gaussian(10_000, seed=1)
    model = Diffusion(
        prediction="eps",
        schedule="linear",
        sampler="ancestral",
        steps=100,
        preprocessing="standard",
        training=TRAINING,
        **FAST,
    ).fit(x, c)
    assert_conditional_moments(model, mean_tol=0.15, std_tol=0.15)
    ddim = copy.deepcopy(model).set_params(sampler="ddim", steps=50)
    # Unclipped, DDIM from predicted noise sends a few per mille of the events tens of sigma
    # away (widths off by a factor 8 here): the clipped denoised estimate keeps the widths.
    assert_conditional_moments(ddim, mean_tol=0.15, std_tol=0.15)
    samples = ddim.sample(c[:3_000], random_state=2)
    assert np.all(samples >= x.min(axis=0) - 1e-6)
    assert np.all(samples <= x.max(axis=0) + 1e-6)


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_schedule_is_variance_preserving_and_its_derivative_is_right(kind):
    schedule = NoiseSchedule(kind)
    t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    alpha, sigma = schedule.alpha_sigma(t)
    np.testing.assert_allclose((alpha**2 + sigma**2).numpy(), 1.0, atol=1e-12)
    assert torch.all(torch.diff(schedule.logsnr(t)) < 0)
    # Central differences of lambda(t) agree with the analytic derivative to O(h^2).
    h = 1e-5
    numeric = (schedule.logsnr(t + h) - schedule.logsnr(t - h)) / (2 * h)
    np.testing.assert_allclose(schedule.dlogsnr_dt(t).numpy(), numeric.numpy(), rtol=1e-5)
    ends = schedule.logsnr(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert ends[0] == pytest.approx(10.0, abs=1e-6)
    assert -10.5 < ends[1] < -9.5


@pytest.fixture(scope="module")
def gaussian_model() -> Diffusion:
    model = Diffusion(
        preprocessing="none", log_prob_solver="rk4", log_prob_steps=20, training=TRAINING, **FAST
    )
    return model.fit(correlated_gaussian(5_000, seed=2))


def test_log_prob_matches_the_analytic_gaussian(gaussian_model):
    assert_log_prob_matches_gaussian(gaussian_model)


def test_density_integrates_to_one(gaussian_model):
    assert_density_integrates_to_one(gaussian_model)


def test_log_prob_agrees_between_solvers(gaussian_model):
    x = correlated_gaussian(200, seed=4)
    # Two accurate integrations of the same ODE agree to float32 round-off (~1e-4 nats here):
    # adaptive steps at tight tolerances against 200 fixed RK4 steps (whose own error, against
    # 400 steps, is 3e-4). At the default rtol = atol = 1e-5 the adaptive error reaches 0.01 nats.
    adaptive = copy.deepcopy(gaussian_model).set_params(
        log_prob_solver="dopri5", rtol=1e-7, atol=1e-7
    )
    fixed = copy.deepcopy(gaussian_model).set_params(log_prob_steps=200)
    np.testing.assert_allclose(adaptive.log_prob(x), fixed.log_prob(x), atol=2e-3)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("prediction", "x0", "prediction must be one of"),
        ("sampler", "dpm", "sampler must be one of"),
        ("schedule", "sigmoid", "schedule must be 'cosine' or 'linear'"),
        ("steps", 0, "steps must be at least 1"),
    ],
)
def test_invalid_option_is_named(option, value, message):
    x, c = conditional_gaussian(200, seed=0)
    with pytest.raises(ValueError, match=message):
        Diffusion(**{option: value}, training={"epochs": 1}, verbose=False).fit(x, c)
