"""Invertible preprocessing steps with exact log-Jacobians, composable into a pipeline.

A density model learns p(z) of the preprocessed data z = T(x); its density in data space is
log p(x) = log p(z) + log|det dT/dx|, which is why every step reports its log-determinant per event.
Steps work on float64 numpy arrays (events x features) and are fitted on training data only.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.special import expit

from generative.validation import check_array, check_is_fitted

__all__ = [
    "STEPS",
    "Chain",
    "Logit",
    "MinMaxScaler",
    "Pipeline",
    "Standardizer",
    "Step",
    "Transform",
    "make_preprocessing",
    "step_from_dict",
]

#: every preprocessing step of the package by class name (data steps and shower steps alike)
STEPS: dict[str, type[Transform]] = {}


class Transform:
    """What every preprocessing step shares: its parameters, fitted state and serialisation.

    Two kinds derive from it: `Step` (a per-event bijection with its log-Jacobian, for density
    models) and `generative.calo.preprocessing.ShowerStep` (shower arrays conditioned on the
    incident energy). One registry and one `step_from_dict` restore both.
    """

    #: names of the fitted numpy arrays that `to_dict` saves
    _state: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        STEPS[cls.__name__] = cls

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments of this step."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """Serialisable description (name, parameters, fitted arrays as lists)."""
        check_is_fitted(self, self._state)
        state = {k: np.asarray(getattr(self, k)).tolist() for k in self._state}
        return {"name": type(self).__name__, "params": self.get_params(), "state": state}

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Transform:
        """Rebuild a fitted step of this class from `to_dict` output."""
        step = cls(**spec["params"])
        for key in cls._state:
            setattr(step, key, np.asarray(spec["state"][key], dtype=np.float64))
        return step

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class Chain(Transform):
    """Steps applied in order (the inverse runs them backwards): the base of both pipelines."""

    def __init__(self, steps: Sequence[Transform] = ()) -> None:
        self.steps = list(steps)

    def get_params(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def to_dict(self) -> dict[str, Any]:
        check_is_fitted(self, ("fitted_",))
        return {
            "name": type(self).__name__,
            "params": {},
            "steps": [s.to_dict() for s in self.steps],
        }

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Chain:
        chain = cls([step_from_dict(s) for s in spec["steps"]])
        chain.fitted_ = True
        return chain

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.steps!r})"


class Step(Transform):
    """One invertible, per-event transformation x -> z with its log|det J|."""

    def fit(self, X: np.ndarray) -> Step:
        """Learn the step's parameters from training data."""
        return self

    @abc.abstractmethod
    def forward(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map data to the model space; return (z, log|det dz/dx| per event)."""

    @abc.abstractmethod
    def inverse(self, Z: np.ndarray) -> np.ndarray:
        """Map model-space values back to data space."""


def step_from_dict(spec: dict[str, Any]) -> Transform:
    """Rebuild a fitted step (or pipeline) from its `to_dict` output."""
    try:
        cls = STEPS[spec["name"]]
    except (KeyError, TypeError):
        name = spec.get("name") if isinstance(spec, dict) else spec
        raise ValueError(f"unknown preprocessing step {name!r}; known: {sorted(STEPS)}") from None
    return cls.from_dict(spec)


class MinMaxScaler(Step):
    """Scale each feature linearly so the training range maps into (margin', 1 - margin').

    The training range is widened by `margin` times its width on each side, so training data land
    strictly inside (0, 1) and a following logit stays finite.
    """

    _state = ("low_", "high_")

    def __init__(self, margin: float = 0.02) -> None:
        self.margin = margin

    def get_params(self) -> dict[str, Any]:
        return {"margin": self.margin}

    def fit(self, X: np.ndarray) -> MinMaxScaler:
        X = check_array(X)
        lo, hi = X.min(axis=0), X.max(axis=0)
        width = hi - lo
        if np.any(width <= 0):
            cols = np.flatnonzero(width <= 0).tolist()
            raise ValueError(f"columns {cols} are constant in the training data; cannot scale them")
        self.low_ = lo - self.margin * width
        self.high_ = hi + self.margin * width
        return self

    def forward(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, self._state)
        scale = self.high_ - self.low_
        logdet = np.full(X.shape[0], -np.log(scale).sum())
        return (X - self.low_) / scale, logdet

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        check_is_fitted(self, self._state)
        return Z * (self.high_ - self.low_) + self.low_


class Logit(Step):
    """Map (0, 1) to the real line; values outside (0, 1) map to +-inf or NaN (zero density)."""

    _state = ()

    def forward(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            Z = np.log(X) - np.log1p(-X)
            logdet = -(np.log(X) + np.log1p(-X)).sum(axis=1)
        return Z, logdet

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        return expit(Z)


class Standardizer(Step):
    """Shift and scale each feature to zero mean and unit variance on the training data."""

    _state = ("mean_", "scale_")

    def fit(self, X: np.ndarray) -> Standardizer:
        X = check_array(X)
        if X.shape[0] < 2:
            raise ValueError(f"standardisation needs at least 2 events, got {X.shape[0]}")
        scale = X.std(axis=0)
        if np.any(scale <= 0):
            cols = np.flatnonzero(scale <= 0).tolist()
            raise ValueError(f"columns {cols} are constant in the training data; cannot scale them")
        self.mean_ = X.mean(axis=0)
        self.scale_ = scale
        return self

    def forward(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, self._state)
        logdet = np.full(X.shape[0], -np.log(self.scale_).sum())
        return (X - self.mean_) / self.scale_, logdet

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        check_is_fitted(self, self._state)
        return Z * self.scale_ + self.mean_


class Pipeline(Chain, Step):
    """Steps applied in order; log-determinants add up, inverses run in reverse order."""

    def fit(self, X: np.ndarray) -> Pipeline:
        for step in self.steps:
            X = step.fit(X).forward(X)[0]
        self.fitted_ = True
        return self

    def forward(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logdet = np.zeros(X.shape[0])
        for step in self.steps:
            X, ld = step.forward(X)
            logdet = logdet + ld
        return X, logdet

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        for step in reversed(self.steps):
            Z = step.inverse(Z)
        return Z


_NAMED = {
    "none": list,
    "standard": lambda: [Standardizer()],
    "minmax": lambda: [MinMaxScaler()],
    # The CATHODE recipe: bounded features -> (0, 1) -> logit -> unit Gaussian-like scale.
    "logit": lambda: [MinMaxScaler(), Logit(), Standardizer()],
}


def make_preprocessing(spec: str | Step | Sequence[Step] | None) -> Pipeline:
    """A fresh, unfitted pipeline from a name ('logit', 'standard', 'minmax', 'none') or steps."""
    if spec is None:
        return Pipeline([])
    if isinstance(spec, str):
        if spec not in _NAMED:
            raise ValueError(f"unknown preprocessing {spec!r}; choose from {sorted(_NAMED)}")
        return Pipeline(_NAMED[spec]())
    if isinstance(spec, Pipeline):
        return copy.deepcopy(spec)
    if isinstance(spec, Step):
        return Pipeline([copy.deepcopy(spec)])
    return Pipeline([copy.deepcopy(s) for s in spec])
