"""Shower models: conditional generators p(shower | incident energy) with one small interface.

`ShowerModel` is configured in `__init__`, learns in `fit(showers, incident_energies)`, generates
with `sample(incident_energies, batch_size=..., random_state=...)` and saves to / loads from one
file. Two models are registered by name (`make_shower_model`):

- 'caloflow' (`CaloFlow`): the two-stage flow of CaloFlow (arXiv:2106.05285). Flow 1 (a MAF)
  learns the stick-breaking fractions of the layer energies given log10 E_inc; flow 2 (a MAF)
  learns the normalised voxel shapes of every layer given log10 E_inc and the log10 layer
  energies. Generated shapes are renormalised and scaled by the flow-1 layer energies, so every
  generated layer carries exactly the energy flow 1 gave it.
- 'flow_matching' (`FlowMatchingShowers`): conditional flow matching (`generative.FlowMatching`)
  on the preprocessed showers given log10 E_inc: by default the layer-energy fractions and
  normalised shapes of CaloFlow learned jointly, or the logit relative voxel energies.

Both use the CaloFlow preprocessing of `generative.calo.preprocessing` (noise for exact zeros,
energies relative to E_inc, logit with a small alpha), train with the shared loop of
`generative.training`, and generate on the CPU in batches of `batch_size` showers. Memory while
generating grows with the batch, not with the number of showers asked for: measured on dataset 1
with the default networks, the peak beyond the (N x n_voxels float64) output is about 35 kB per
shower of the batch for flow matching and 12 kB for CaloFlow, i.e. about 0.35 GB and 0.12 GB at
the default batch_size of 10,000; lower `batch_size` to bound it further.
Generated showers are float64 MeV, non-negative, with every voxel below `noise` set to 0.
"""

from __future__ import annotations

import abc
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from generative.base import DensityModel, inherited_param_names
from generative.calo.geometry import (
    DATASETS,
    CaloGeometry,
    CaloLayer,
    load_binning,
    load_dataset_geometry,
)
from generative.calo.io import ShowerData
from generative.calo.preprocessing import (
    Dequantize,
    EnergyFractions,
    LayerShapes,
    LogitAlpha,
    RelativeToIncident,
    ShowerPipeline,
    step_from_dict,
)
from generative.fileio import write_atomic
from generative.flow_matching import FlowMatching
from generative.flows import MAF
from generative.training import TrainingConfig
from generative.validation import check_is_fitted

__all__ = [
    "SHOWER_MODELS",
    "CaloFlow",
    "FlowMatchingShowers",
    "ShowerModel",
    "check_incident_energies",
    "make_shower_model",
    "resolve_geometry",
]

FORMAT = "resonance-search/shower-model"
FORMAT_VERSION = 1

#: registry of shower models by short name, e.g. ``make_shower_model("caloflow")``
SHOWER_MODELS: dict[str, type[ShowerModel]] = {}


def make_shower_model(name: str, **params: Any) -> ShowerModel:
    """Construct a registered shower model by its short name."""
    try:
        cls = SHOWER_MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown shower model {name!r}; choose from {sorted(SHOWER_MODELS)}"
        ) from None
    return cls(**params)


def resolve_geometry(geometry: str | os.PathLike | CaloGeometry) -> CaloGeometry:
    """A geometry from itself, a challenge data set name ('1-photons', ...) or a binning XML."""
    if isinstance(geometry, CaloGeometry):
        return geometry
    if isinstance(geometry, str) and geometry in DATASETS:
        return load_dataset_geometry(geometry)
    path = Path(geometry)
    if not path.is_file():
        raise ValueError(
            f"geometry {str(geometry)!r} is neither a data set ({sorted(DATASETS)}) nor a "
            "binning XML file"
        )
    return load_binning(path)


def _geometry_to_dict(geometry: CaloGeometry) -> dict[str, Any]:
    layers = [[lay.layer_id, list(lay.r_edges), lay.n_alpha] for lay in geometry.layers]
    return {"particle": geometry.particle, "layers": layers}


def _geometry_from_dict(spec: dict[str, Any]) -> CaloGeometry:
    layers = tuple(CaloLayer(int(i), tuple(edges), int(n)) for i, edges, n in spec["layers"])
    return CaloGeometry(particle=spec["particle"], layers=layers)


def check_incident_energies(incident_energies: Any) -> np.ndarray:
    """Incident energies as a float64 (N,) array, or an error naming what is wrong with them."""
    try:
        e = np.asarray(incident_energies, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"incident energies must be numeric: {err}") from None
    if e.ndim == 2 and e.shape[1] == 1:
        e = e[:, 0]
    if e.ndim != 1:
        raise ValueError(f"incident energies must have shape (N,) or (N, 1), got {e.shape}")
    bad = int((~np.isfinite(e)).sum())
    if bad:
        raise ValueError(f"incident energies contain NaN/inf in {bad} of {e.size} events")
    bad = int((e <= 0).sum())
    if bad:
        raise ValueError(f"incident energies must be positive: {bad} of {e.size} are <= 0 MeV")
    return e


def _encode(value: Any) -> Any:
    if isinstance(value, CaloGeometry):
        return {"__geometry__": _geometry_to_dict(value)}
    if isinstance(value, TrainingConfig):
        return value.to_dict()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "__geometry__" in value:
        return _geometry_from_dict(value["__geometry__"])
    return value


class ShowerModel(BaseEstimator, abc.ABC):
    """A conditional shower generator p(shower | E_inc) with a scikit-learn style life cycle.

    Common arguments: `geometry` (a `CaloGeometry`, a data set name such as '1-photons' or a
    binning XML path), `noise` (MeV: exact zeros get uniform noise below it, generated voxels
    below it become 0), `alpha` of the logit, `margin` of the energy scale, `training` (a
    `TrainingConfig` or a mapping of its fields, for every network), `random_state` and `verbose`
    (progress bars on stderr when it is a terminal).
    """

    #: short name in the registry
    name: ClassVar[str | None] = None
    _fitted: ClassVar[tuple[str, ...]] = ("geometry_", "preprocessing_", "models_")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name is not None:
            SHOWER_MODELS[cls.name] = cls

    def __init__(
        self,
        *,
        geometry: str | os.PathLike | CaloGeometry = "1-photons",
        noise: float = 1e-3,
        alpha: float = 1e-6,
        margin: float = 0.1,
        training: TrainingConfig | dict[str, Any] | None = None,
        random_state: int | None = None,
        verbose: bool = True,
    ) -> None:
        self.geometry = geometry
        self.noise = noise
        self.alpha = alpha
        self.margin = margin
        self.training = training
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Constructor arguments of the class and of every ShowerModel base it forwards to."""
        return inherited_param_names(cls, ShowerModel)

    # -- what subclasses provide ---------------------------------------------------------------
    @abc.abstractmethod
    def _fit_models(
        self, data: ShowerData, seeds: np.ndarray
    ) -> tuple[ShowerPipeline, dict[str, DensityModel]]:
        """Fit the preprocessing and the networks; return them."""

    @abc.abstractmethod
    def _sample_batch(self, incident: np.ndarray, seed: int) -> np.ndarray:
        """Generate one batch of showers (MeV) for the given incident energies."""

    # -- public API -----------------------------------------------------------------------------
    def fit(self, showers: Any, incident_energies: Any) -> ShowerModel:
        """Learn p(shower | E_inc) from showers (N, n_voxels) and incident energies (N,), MeV."""
        try:
            data = ShowerData(energies=incident_energies, showers=showers)
        except (TypeError, ValueError) as err:
            raise type(err)(f"invalid training data: {err}") from None
        geometry = resolve_geometry(self.geometry)
        data.check_geometry(geometry)
        if len(data) < 10:
            raise ValueError(f"need at least 10 showers to fit a shower model, got {len(data)}")
        seed = (
            int(np.random.SeedSequence().generate_state(1)[0])
            if self.random_state is None
            else int(self.random_state)
        )
        seeds = np.random.SeedSequence(seed).generate_state(4)
        self.geometry_ = geometry
        self.n_voxels_ = geometry.n_voxels
        self.seed_ = seed
        self.preprocessing_, self.models_ = self._fit_models(data, seeds[:3])
        self.sample_seed_ = int(seeds[3])
        self._sample_rng = np.random.default_rng(self.sample_seed_)
        return self

    def sample(
        self,
        incident_energies: Any,
        *,
        batch_size: int = 10_000,
        random_state: int | None = None,
    ) -> np.ndarray:
        """One shower (MeV, shape (N, n_voxels)) per incident energy, generated in batches.

        Memory beyond the output grows with `batch_size` only (see the module docstring). The same
        `random_state` and `batch_size` give the same showers; without `random_state` successive
        calls draw fresh showers from the model's own seeded stream.
        """
        check_is_fitted(self, self._fitted)
        energies = check_incident_energies(incident_energies)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        seed = self._next_seed() if random_state is None else int(random_state)
        starts = range(0, len(energies), batch_size)
        seeds = np.random.SeedSequence(seed).generate_state(max(len(starts), 1))
        out = np.empty((len(energies), self.n_voxels_))
        bar = tqdm(
            starts,
            desc=f"generating ({type(self).__name__})",
            disable=not (self.verbose and sys.stderr.isatty()),
            leave=False,
            file=sys.stderr,
        )
        for i, start in enumerate(bar):
            stop = min(start + batch_size, len(energies))
            out[start:stop] = self._sample_batch(energies[start:stop], int(seeds[i]))
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to one file, atomically; `load` restores it exactly."""
        check_is_fitted(self, self._fitted)
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "params": {k: _encode(v) for k, v in self.get_params(deep=False).items()},
            "geometry": _geometry_to_dict(self.geometry_),
            "seed": self.seed_,
            "sample_seed": self.sample_seed_,
            "preprocessing": self.preprocessing_.to_dict(),
            "extra": self._extra_state(),
        }
        models = {key: model.to_bytes() for key, model in self.models_.items()}
        buffer = io.BytesIO()
        torch.save({"meta": json.dumps(meta), "models": models}, buffer)
        return write_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> ShowerModel:
        """Read a model written by `save` (on a subclass, the file must hold that class)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no shower model file at {path}")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(payload["meta"])
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a resonance-search shower model file")
        model_cls = SHOWER_MODELS.get(meta["name"])
        if model_cls is None:
            raise ValueError(f"{path} holds an unknown shower model {meta['name']!r}")
        if not issubclass(model_cls, cls):
            raise TypeError(f"{path} holds a {model_cls.__name__}, not a {cls.__name__}")
        model = model_cls(**{k: _decode(v) for k, v in meta["params"].items()})
        model.geometry_ = _geometry_from_dict(meta["geometry"])
        model.n_voxels_ = model.geometry_.n_voxels
        model.seed_ = meta["seed"]
        model.sample_seed_ = meta["sample_seed"]
        model._sample_rng = np.random.default_rng(model.sample_seed_)
        model.preprocessing_ = step_from_dict(meta["preprocessing"])
        model._set_extra_state(meta["extra"])
        model.models_ = {k: DensityModel.from_bytes(v) for k, v in payload["models"].items()}
        return model

    # -- helpers --------------------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        """Fitted values beyond the preprocessing and networks, JSON-serialisable."""
        return {}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what `_extra_state` returned."""

    def _training(self, override: Any = None) -> TrainingConfig:
        base = TrainingConfig.coerce(self.training)
        if override is None:
            return base
        if isinstance(override, TrainingConfig):
            return override
        return TrainingConfig(**{**base.to_dict(), **dict(override)})

    def _base_steps(self, seed: int) -> list:
        return [Dequantize(self.noise, int(seed)), RelativeToIncident(self.margin)]

    def _next_seed(self) -> int:
        return int(self._sample_rng.integers(2**31 - 1))

    # -- the layer representation (layer energies + normalised shapes) shared by the models ------
    def _layers(self) -> LayerShapes:
        return LayerShapes([layer.n_voxels for layer in self.geometry_.active_layers])

    def _free_voxels(self) -> np.ndarray:
        # a one-voxel layer's shape is always 1: the networks model only the other voxels
        sizes = np.asarray(self._layers().layer_sizes)
        return np.repeat(sizes > 1, sizes)

    def _decompose(
        self, data: ShowerData, seed: int
    ) -> tuple[ShowerPipeline, np.ndarray, np.ndarray]:
        """Fit the base preprocessing; return it, the relative layer energies and the shapes."""
        pre = ShowerPipeline(self._base_steps(seed))
        incident = data.energies.astype(np.float64)
        layers = self._layers()
        energies, shapes = layers.split(
            layers.forward(pre.fit_forward(data.showers, incident), incident)
        )
        return pre, energies, shapes

    def _energy_features(self, energies: np.ndarray) -> np.ndarray:
        return LogitAlpha(self.alpha).forward(EnergyFractions().forward(energies, None), None)

    def _energies_from_features(self, features: np.ndarray) -> np.ndarray:
        return EnergyFractions().inverse(LogitAlpha(self.alpha).inverse(features, None), None)

    def _shape_features(self, shapes: np.ndarray) -> np.ndarray:
        return LogitAlpha(self.alpha).forward(shapes[:, self._free_voxels()], None)

    def _compose(
        self, energies: np.ndarray, shape_features: np.ndarray, incident: np.ndarray
    ) -> np.ndarray:
        """Showers (MeV) from relative layer energies and the shape features of the free voxels."""
        shapes = np.ones((len(incident), self.n_voxels_))
        shapes[:, self._free_voxels()] = LogitAlpha(self.alpha).inverse(shape_features, None)
        showers = self._layers().inverse(np.concatenate([energies, shapes], axis=1), incident)
        return self.preprocessing_.inverse(showers, incident)


def _flow_params(defaults: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    params = {**defaults, **(override or {})}
    params.pop("training", None)
    return params


class CaloFlow(ShowerModel):
    """Two-stage flow in the CaloFlow manner (arXiv:2106.05285), both stages MAFs.

    Flow 1: stick-breaking fractions of the layer energies (logit) given log10 E_inc. Flow 2: the
    per-layer normalised voxel shapes (logit) given log10 E_inc and log10 of the layer energies
    relative to E_inc. `energy_flow` and `shape_flow` are keyword arguments of
    `generative.flows.MAF` that override the defaults (``ENERGY_FLOW``, ``SHAPE_FLOW``); a
    ``"training"`` entry in either overrides fields of `training` for that flow only. Sampling a
    MAF takes one network pass per feature, so flow 2 dominates the generation time.
    """

    name = "caloflow"
    ENERGY_FLOW: ClassVar[dict[str, Any]] = {
        "transform": "spline",
        "n_transforms": 6,
        "hidden_features": 64,
        "n_bins": 8,
    }
    SHAPE_FLOW: ClassVar[dict[str, Any]] = {
        "transform": "affine",
        "n_transforms": 4,
        "hidden_features": 256,
    }

    def __init__(
        self,
        *,
        energy_flow: dict[str, Any] | None = None,
        shape_flow: dict[str, Any] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.energy_flow = energy_flow
        self.shape_flow = shape_flow

    def _fit_models(
        self, data: ShowerData, seeds: np.ndarray
    ) -> tuple[ShowerPipeline, dict[str, DensityModel]]:
        pre, energies, shapes = self._decompose(data, seeds[0])
        incident = data.energies.astype(np.float64)
        log_e = np.log10(energies)
        self.log_energy_floor_ = log_e.min(axis=0)
        models = {
            "energy": self._fit_flow(
                self.ENERGY_FLOW,
                self.energy_flow,
                self._energy_features(energies),
                np.log10(incident)[:, None],
                seeds[1],
            ),
            "shape": self._fit_flow(
                self.SHAPE_FLOW,
                self.shape_flow,
                self._shape_features(shapes),
                self._shape_context(incident, log_e),
                seeds[2],
            ),
        }
        return pre, models

    def _fit_flow(
        self,
        defaults: dict[str, Any],
        override: dict[str, Any] | None,
        x: np.ndarray,
        context: np.ndarray,
        seed: int,
    ) -> MAF:
        model = MAF(
            **_flow_params(defaults, override),
            preprocessing="standard",
            context_preprocessing="standard",
            training=self._training((override or {}).get("training")),
            random_state=int(seed),
            verbose=self.verbose,
        )
        return model.fit(x, context)

    def _shape_context(self, incident: np.ndarray, log_e: np.ndarray) -> np.ndarray:
        # generated layer energies below anything seen in training would be extrapolation
        log_e = np.maximum(log_e, self.log_energy_floor_)
        return np.concatenate([np.log10(incident)[:, None], log_e], axis=1)

    def _layer_energies_relative(self, incident: np.ndarray, seed: int) -> np.ndarray:
        u = self.models_["energy"].sample(
            np.log10(incident)[:, None], random_state=seed, batch_size=len(incident)
        )
        return self._energies_from_features(u)

    def _sample_batch(self, incident: np.ndarray, seed: int) -> np.ndarray:
        seed_energy, seed_shape = np.random.SeedSequence(seed).generate_state(2)
        energies = self._layer_energies_relative(incident, int(seed_energy))
        context = self._shape_context(incident, np.log10(np.maximum(energies, 1e-300)))
        free = self.models_["shape"].sample(
            context, random_state=int(seed_shape), batch_size=len(incident)
        )
        return self._compose(energies, free, incident)

    def sample_layer_energies(
        self,
        incident_energies: Any,
        *,
        batch_size: int = 10_000,
        random_state: int | None = None,
    ) -> np.ndarray:
        """Flow 1 alone: layer energies (MeV, (N, n_layers)) as `sample` draws them.

        With the same `random_state` and `batch_size`, these are the layer energies of the
        showers `sample` returns (up to voxels zeroed below `noise`).
        """
        check_is_fitted(self, self._fitted)
        energies = check_incident_energies(incident_energies)
        seed = self._next_seed() if random_state is None else int(random_state)
        starts = range(0, len(energies), batch_size)
        seeds = np.random.SeedSequence(seed).generate_state(max(len(starts), 1))
        relative = next(s for s in self.preprocessing_.steps if isinstance(s, RelativeToIncident))
        out = np.empty((len(energies), len(self.geometry_.active_layers)))
        for i, start in enumerate(starts):
            batch = energies[start : start + batch_size]
            seed_energy = np.random.SeedSequence(int(seeds[i])).generate_state(2)[0]
            rel = self._layer_energies_relative(batch, int(seed_energy))
            out[start : start + batch_size] = relative.inverse(rel, batch)
        return out

    def _extra_state(self) -> dict[str, Any]:
        return {"log_energy_floor": self.log_energy_floor_.tolist()}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        self.log_energy_floor_ = np.asarray(state["log_energy_floor"], dtype=np.float64)


class FlowMatchingShowers(ShowerModel):
    """Conditional flow matching on the preprocessed showers, given log10 E_inc.

    `representation` 'layers' (default) learns the CaloFlow representation jointly in one
    network: the logit stick-breaking fractions of the layer energies (the first of which is
    E_tot / E_inc) next to the logit normalised shapes, so the energy totals are single features
    rather than sums of hundreds of voxel errors, and generated layers carry exactly their
    generated energies. 'voxels' learns the logit of every voxel energy relative to E_inc.

    `flow` holds keyword arguments of `generative.FlowMatching` overriding ``FLOW`` (a
    ``"training"`` entry overrides fields of `training`). Sampling integrates the learned
    velocity field with `solver` and `steps` of those arguments (midpoint, 30 steps by default).
    """

    name = "flow_matching"
    FLOW: ClassVar[dict[str, Any]] = {
        "hidden_features": 512,
        "n_blocks": 4,
        "solver": "midpoint",
        "steps": 30,
    }

    def __init__(
        self,
        *,
        representation: Literal["layers", "voxels"] = "layers",
        flow: dict[str, Any] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.representation = representation
        self.flow = flow

    def _fit_models(
        self, data: ShowerData, seeds: np.ndarray
    ) -> tuple[ShowerPipeline, dict[str, DensityModel]]:
        incident = data.energies.astype(np.float64)
        if self.representation == "layers":
            pre, energies, shapes = self._decompose(data, seeds[0])
            x = np.concatenate([self._energy_features(energies), self._shape_features(shapes)], 1)
        elif self.representation == "voxels":
            pre = ShowerPipeline([*self._base_steps(seeds[0]), LogitAlpha(self.alpha)])
            x = pre.fit_forward(data.showers, incident)
        else:
            raise ValueError(
                f"representation must be 'layers' or 'voxels', got {self.representation!r}"
            )
        model = FlowMatching(
            **_flow_params(self.FLOW, self.flow),
            preprocessing="standard",
            context_preprocessing="standard",
            training=self._training((self.flow or {}).get("training")),
            random_state=int(seeds[1]),
            verbose=self.verbose,
        )
        return pre, {"flow": model.fit(x, np.log10(incident)[:, None])}

    def _sample_batch(self, incident: np.ndarray, seed: int) -> np.ndarray:
        z = self.models_["flow"].sample(
            np.log10(incident)[:, None], random_state=seed, batch_size=len(incident)
        )
        if self.representation == "voxels":
            return self.preprocessing_.inverse(z, incident)
        n_layers = len(self.geometry_.active_layers)
        energies = self._energies_from_features(z[:, :n_layers])
        return self._compose(energies, z[:, n_layers:], incident)
