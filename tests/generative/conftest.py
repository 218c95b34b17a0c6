"""Shared fixtures for the generative-model tests: small, fast configurations of every model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from generative import MODELS, DensityModel, make_model

#: small configurations per registered model name, so interface tests run in seconds
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "maf": {"n_transforms": 3, "hidden_features": 32},
    "coupling": {"n_transforms": 4, "hidden_features": 32, "n_blocks": 1, "n_bins": 4},
    "flow_matching": {
        "hidden_features": 32,
        "n_blocks": 1,
        "steps": 10,
        "log_prob_solver": "rk4",
        "log_prob_steps": 10,
    },
    "diffusion": {
        "hidden_features": 32,
        "n_blocks": 1,
        "steps": 10,
        "log_prob_solver": "rk4",
        "log_prob_steps": 10,
    },
    "gan": {"generator_features": 32, "critic_features": 32, "n_critic": 2},
    "vae": {"hidden_features": 32, "n_layers": 2, "n_importance": 10},
}

FAST_TRAINING = {"epochs": 4, "batch_size": 256, "learning_rate": 3e-3}


def fast_model(name: str, **overrides: Any) -> DensityModel:
    """A registered model in its fast configuration, quiet and seeded."""
    params = {"training": FAST_TRAINING, "random_state": 0, "verbose": False}
    params.update(FAST_PARAMS[name])
    params.update(overrides)
    return make_model(name, **params)


def registered_fast_models() -> list[str]:
    """Names of every registered model that has a fast configuration."""
    return [name for name in sorted(MODELS) if name in FAST_PARAMS]


@pytest.fixture
def conditional_data() -> tuple[np.ndarray, np.ndarray]:
    """2-D Gaussian events whose mean depends linearly on a 1-D context."""
    rng = np.random.default_rng(42)
    c = rng.uniform(0.0, 1.0, size=(2000, 1))
    x = rng.normal(size=(2000, 2)) * [0.3, 0.5] + np.hstack([2.0 * c, -c])
    return x, c
