"""Shared data for the detector tests: a synthetic Gaussian window and the built-in dijet toy."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

import anomaly  # noqa: F401  (loads torch and scikit-learn's OpenMP before limiting threads)
from analysis.data import build_features, make_toy

SR = (3.3, 3.7)
FEATURES = ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]


class Events(NamedTuple):
    """Features, mjj (TeV), signal-region mask and truth labels of some events."""

    X: np.ndarray
    mjj: np.ndarray
    in_sr: np.ndarray
    labels: np.ndarray

    def sr(self) -> Events:
        """Only the signal-region events."""
        keep = self.in_sr
        return Events(self.X[keep], self.mjj[keep], self.in_sr[keep], self.labels[keep])


def gaussian_events(n_background: int, n_signal: int, seed: int) -> Events:
    """4 Gaussian features whose means shift with mjj, plus a signal localised in x and mjj."""
    rng = np.random.default_rng(seed)
    mjj_b = 2.9 + rng.exponential(0.5, n_background)
    mjj_b = np.where(mjj_b > 4.1, rng.uniform(2.9, 4.1, n_background), mjj_b)
    cov = 0.5 * np.eye(4) + 0.5
    X_b = rng.multivariate_normal(np.zeros(4), cov, n_background) + 0.8 * (mjj_b[:, None] - 3.5)
    mjj_s = rng.normal(3.5, 0.05, n_signal)
    X_s = rng.normal([1.5, -1.0, 1.0, -1.5], 0.15, (n_signal, 4))
    X = np.concatenate([X_b, X_s])
    mjj = np.concatenate([mjj_b, mjj_s])
    labels = np.repeat([0, 1], [n_background, n_signal])
    order = rng.permutation(len(mjj))
    X, mjj, labels = X[order], mjj[order], labels[order]
    return Events(X, mjj, (mjj > SR[0]) & (mjj < SR[1]), labels)


def toy_events(n_background: int, n_signal: int, seed: int) -> Events:
    """The package's dijet toy in the standard four features (TeV), mjj between 2.8 and 5 TeV."""
    table = build_features(make_toy(n_background, n_signal, random_state=seed), FEATURES)
    table = table[(table["mjj"] > 2.8) & (table["mjj"] < 5.0)]
    mjj = table["mjj"].to_numpy()
    return Events(
        table[FEATURES].to_numpy(),
        mjj,
        (mjj > SR[0]) & (mjj < SR[1]),
        table["label"].to_numpy(),
    )


@pytest.fixture(scope="session")
def gaussian() -> Events:
    """A small synthetic window with a strong signal (about 300 of 1500 SR events)."""
    return gaussian_events(4000, 300, seed=1)


#: tiny conditional flow for tests: seconds, not minutes
TINY_FLOW = {
    "transform": "affine",
    "n_transforms": 2,
    "hidden_features": 16,
    "batch_norm": False,
    "training": {"epochs": 8, "batch_size": 512, "learning_rate": 3e-3, "patience": None},
    "verbose": False,
}
#: small HGB ensemble for tests
SMALL_HGB = {"n_models": 2, "max_iter": 100}


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    """One thread per library: on a shared 2-core machine, spinning thread pools cost 10x."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(previous)
