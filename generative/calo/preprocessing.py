"""Invertible shower preprocessing in the CaloFlow manner (arXiv:2106.05285).

A shower goes through a chain of steps, each of which knows how to undo itself:

1. `Dequantize`: exact zeros get uniform noise in (0, `noise`) MeV, so the flows see a continuous
   density instead of a point mass; on the way back every voxel below `noise` becomes 0 again.
2. `RelativeToIncident`: voxel energies divided by the incident energy times a fitted scale, so
   that every relative energy of the training set lies below 1 / (1 + margin).
3. `LayerShapes`: the voxels of each layer become the layer energy and the layer's normalised shape
   (voxel / layer energy, summing to 1); the inverse renormalises generated shapes before
   multiplying by the layer energies, so generated layers carry exactly their layer energy.
4. `EnergyFractions`: layer energies e_1..e_L become the stick-breaking fractions
   (sum e, e_1 / sum_{j>=1} e_j, ..., e_{L-1} / (e_{L-1} + e_L)), each in [0, 1].
5. `LogitAlpha`: x -> logit(alpha + (1 - 2 alpha) x), which maps [0, 1] to a bounded slice of the
   real line; the inverse clips back into [0, 1].

Every step has `fit(x, incident)`, `forward(x, incident)` and `inverse(z, incident)` on float64
arrays (events x values); steps that do not need the incident energy ignore it. The shower models
sample rather than evaluate likelihoods in voxel space, so the steps carry no log-Jacobians (the
layer decomposition changes the dimension and has none). They form one family with the steps of
`generative.preprocessing` (`Transform`: parameters, fitted state, one registry) and serialise
the same way (`to_dict` / `step_from_dict`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import expit, logit

from generative.preprocessing import Chain, Transform, step_from_dict
from generative.validation import check_is_fitted

__all__ = [
    "Dequantize",
    "EnergyFractions",
    "LayerShapes",
    "LogitAlpha",
    "RelativeToIncident",
    "ShowerPipeline",
    "ShowerStep",
    "step_from_dict",
]


class ShowerStep(Transform):
    """One invertible transformation of shower arrays, possibly depending on the incident energy."""

    def fit(self, x: np.ndarray, incident: np.ndarray) -> ShowerStep:
        """Learn the step's parameters from training showers."""
        return self

    @abc.abstractmethod
    def forward(self, x: np.ndarray, incident: np.ndarray) -> np.ndarray:
        """Map showers (or an earlier step's output) towards the model space."""

    @abc.abstractmethod
    def inverse(self, z: np.ndarray, incident: np.ndarray) -> np.ndarray:
        """Map model-space values back; the output is physical (non-negative, bounded)."""


def _incident_column(incident: np.ndarray, n: int) -> np.ndarray:
    e = np.asarray(incident, dtype=np.float64).reshape(-1, 1)
    if e.shape[0] != n:
        raise ValueError(f"{e.shape[0]} incident energies for {n} showers")
    return e


class Dequantize(ShowerStep):
    """Exact zeros -> uniform noise in (0, `noise`) MeV; inverse: values below `noise` -> 0.

    The noise is drawn from a generator seeded by `random_state` at every call, so the forward
    map is a deterministic function of its input. Values that were positive but below `noise`
    are not recovered: `noise` must lie below the smallest energy that matters (the challenge's
    readout threshold is 1 MeV for dataset 1).
    """

    def __init__(self, noise: float = 1e-3, random_state: int = 0) -> None:
        self.noise = noise
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {"noise": self.noise, "random_state": self.random_state}

    def _check(self) -> None:
        if not (np.isfinite(self.noise) and self.noise > 0):
            raise ValueError(f"noise must be a positive energy in MeV, got {self.noise}")

    def forward(self, x: np.ndarray, incident: np.ndarray) -> np.ndarray:
        self._check()
        out = np.array(x, dtype=np.float64)
        zeros = out == 0
        rng = np.random.default_rng(self.random_state)
        # 1 - U[0, 1) lies in (0, 1], so no zero survives the noise
        out[zeros] = self.noise * (1.0 - rng.random(int(zeros.sum())))
        return out

    def inverse(self, z: np.ndarray, incident: np.ndarray) -> np.ndarray:
        self._check()
        out = np.array(z, dtype=np.float64)
        out[out < self.noise] = 0.0
        return out


class RelativeToIncident(ShowerStep):
    """Energies divided by (incident energy x `scale_`).

    `scale_` is (1 + `margin`) times the largest total-over-incident energy of the training set, so
    every relative voxel and layer energy of the training set lies below 1 / (1 + margin) and a
    logit after this step stays finite for showers somewhat beyond the training range.
    """

    _state = ("scale_",)

    def __init__(self, margin: float = 0.1) -> None:
        self.margin = margin

    def get_params(self) -> dict[str, Any]:
        return {"margin": self.margin}

    def fit(self, x: np.ndarray, incident: np.ndarray) -> RelativeToIncident:
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        e = _incident_column(incident, len(x))
        ratio = float(np.max(np.sum(x, axis=1) / e[:, 0]))
        if not ratio > 0:
            raise ValueError("the training showers carry no energy; cannot fit the energy scale")
        self.scale_ = np.float64((1.0 + self.margin) * ratio)
        return self

    def forward(self, x: np.ndarray, incident: np.ndarray) -> np.ndarray:
        check_is_fitted(self, self._state)
        return np.asarray(x, dtype=np.float64) / (_incident_column(incident, len(x)) * self.scale_)

    def inverse(self, z: np.ndarray, incident: np.ndarray) -> np.ndarray:
        check_is_fitted(self, self._state)
        return np.asarray(z, dtype=np.float64) * (_incident_column(incident, len(z)) * self.scale_)


class LayerShapes(ShowerStep):
    """Voxels (N, V) -> [layer energies (N, L), per-layer normalised shapes (N, V)].

    `layer_sizes` are the voxel counts of the layers in flattening order (the geometry's
    ``[layer.n_voxels for layer in geometry.active_layers]``). The inverse clips negative shape
    values, renormalises every layer's shape to unit sum (a generator's shapes sum to 1 only
    approximately) and multiplies by the layer energy, so a generated layer carries exactly its
    layer energy; a layer whose shape is all zero stays empty.
    """

    def __init__(self, layer_sizes: Sequence[int]) -> None:
        self.layer_sizes = [int(n) for n in layer_sizes]

    def get_params(self) -> dict[str, Any]:
        return {"layer_sizes": self.layer_sizes}

    @property
    def n_layers(self) -> int:
        """Number of layers."""
        return len(self.layer_sizes)

    def _bounds(self, n_voxels: int) -> np.ndarray:
        if not self.layer_sizes or min(self.layer_sizes) < 1:
            raise ValueError(f"layer_sizes must be positive voxel counts, got {self.layer_sizes}")
        if sum(self.layer_sizes) != n_voxels:
            raise ValueError(
                f"showers have {n_voxels} voxels but the layers hold {sum(self.layer_sizes)}"
            )
        return np.cumsum([0, *self.layer_sizes])

    def split(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The forward output split into (layer energies, shapes)."""
        return z[:, : self.n_layers], z[:, self.n_layers :]

    def forward(self, x: np.ndarray, incident: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        bounds = self._bounds(x.shape[1])
        energies = np.add.reduceat(x, bounds[:-1], axis=1)
        per_voxel = np.repeat(energies, self.layer_sizes, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            shapes = np.where(per_voxel > 0, x / per_voxel, 0.0)
        return np.concatenate([energies, shapes], axis=1)

    def inverse(self, z: np.ndarray, incident: np.ndarray) -> np.ndarray:
        energies, shapes = self.split(np.asarray(z, dtype=np.float64))
        bounds = self._bounds(shapes.shape[1])
        shapes = np.clip(shapes, 0.0, None)
        sums = np.repeat(np.add.reduceat(shapes, bounds[:-1], axis=1), self.layer_sizes, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            shapes = np.where(sums > 0, shapes / sums, 0.0)
        return shapes * np.repeat(np.clip(energies, 0.0, None), self.layer_sizes, axis=1)


class EnergyFractions(ShowerStep):
    """Layer energies (N, L) -> stick-breaking fractions (N, L), each in [0, 1].

    Column 0 is the total energy (which `RelativeToIncident` keeps below 1); column i >= 1 is the
    share of layer i - 1 in the energy of layers i - 1 .. L - 1 (0 where those are all empty). The
    map is one-to-one for positive energies, which `Dequantize` guarantees.
    """

    def forward(self, x: np.ndarray, incident: np.ndarray) -> np.ndarray:
        e = np.asarray(x, dtype=np.float64)
        # remaining[:, i] = sum of layers i .. L - 1
        remaining = np.cumsum(e[:, ::-1], axis=1)[:, ::-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(remaining[:, :-1] > 0, e[:, :-1] / remaining[:, :-1], 0.0)
        return np.concatenate([remaining[:, :1], shares], axis=1)

    def inverse(self, z: np.ndarray, incident: np.ndarray) -> np.ndarray:
        u = np.clip(np.asarray(z, dtype=np.float64), 0.0, 1.0)
        out = np.empty_like(u)
        remaining = u[:, 0].copy()
        for i in range(u.shape[1] - 1):
            out[:, i] = u[:, i + 1] * remaining
            remaining = remaining - out[:, i]
        out[:, -1] = remaining
        return out


class LogitAlpha(ShowerStep):
    """x in [0, 1] -> logit(alpha + (1 - 2 alpha) x); the inverse clips back into [0, 1].

    The small `alpha` keeps exact 0 and 1 finite (at about -/+ ln(1/alpha)), as in CaloFlow.
    """

    def __init__(self, alpha: float = 1e-6) -> None:
        self.alpha = alpha

    def get_params(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def _check(self) -> None:
        if not 0.0 < self.alpha < 0.5:
            raise ValueError(f"alpha must lie in (0, 0.5), got {self.alpha}")

    def forward(self, x: np.ndarray, incident: np.ndarray) -> np.ndarray:
        self._check()
        x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
        return logit(self.alpha + (1.0 - 2.0 * self.alpha) * x)

    def inverse(self, z: np.ndarray, incident: np.ndarray) -> np.ndarray:
        self._check()
        x = (expit(np.asarray(z, dtype=np.float64)) - self.alpha) / (1.0 - 2.0 * self.alpha)
        return np.clip(x, 0.0, 1.0)


class ShowerPipeline(Chain, ShowerStep):
    """Steps applied in order; the inverse runs them backwards."""

    def fit(self, x: np.ndarray, incident: np.ndarray) -> ShowerPipeline:
        self.fit_forward(x, incident)
        return self

    def fit_forward(self, x: np.ndarray, incident: np.ndarray) -> np.ndarray:
        """Fit every step and return the transformed training data (one pass)."""
        for step in self.steps:
            x = step.fit(x, incident).forward(x, incident)
        self.fitted_ = True
        return x

    def forward(self, x: np.ndarray, incident: np.ndarray) -> np.ndarray:
        for step in self.steps:
            x = step.forward(x, incident)
        return x

    def inverse(self, z: np.ndarray, incident: np.ndarray) -> np.ndarray:
        for step in reversed(self.steps):
            z = step.inverse(z, incident)
        return z
