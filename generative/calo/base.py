"""The interface every shower model shares: p(shower | incident energy), seeded, saved checked.

`ShowerModel` is configured in `__init__`, learns in `fit(showers, incident_energies)`, generates
with `sample(incident_energies, batch_size=..., random_state=...)` and saves to / loads from one
file through the envelope of `generative.estimator` (checksummed, never unpickled). It shares
registry, seeding and envelope with the density models; a subclass provides `_fit_models` (the
preprocessing and its networks) and `_sample_batch`. The layer representation (layer energies
as stick-breaking fractions, per-layer normalised shapes) used by the built-in models lives here.

Generated showers are float64 MeV, non-negative, with every voxel below the readout threshold
set to 0: `threshold="auto"` learns it from the training showers (their smallest non-zero voxel,
2 MeV for ../shared/data/calo), so generated files obey the same zero suppression as the data.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from tqdm.auto import tqdm

from generative.base import DensityModel
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
from generative.estimator import Estimator
from generative.training import TrainingConfig, merge_settings
from generative.validation import check_is_fitted

__all__ = [
    "SHOWER_MODELS",
    "ShowerModel",
    "check_incident_energies",
    "flow_params",
    "make_shower_model",
    "resolve_geometry",
]

#: registry of shower models by short name, e.g. ``make_shower_model("caloflow")``
SHOWER_MODELS: dict[str, type[ShowerModel]] = {}


def make_shower_model(name: str, **params: Any) -> ShowerModel:
    """Construct a registered shower model by its short name."""
    # the built-in models register when their modules are imported
    import generative.calo.models  # noqa: F401

    return ShowerModel.create(name, **params)


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


def flow_params(defaults: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """Network arguments: `defaults` updated by `override`, without its training entry."""
    params = merge_settings(defaults, override)
    params.pop("training", None)
    return params


class ShowerModel(Estimator, abc.ABC):
    """A conditional shower generator p(shower | E_inc) with a scikit-learn style life cycle.

    Common arguments: `geometry` (a `CaloGeometry`, a data set name such as '1-photons' or a
    binning XML path), `noise` (MeV: exact zeros get uniform noise below it, generated voxels
    below it become 0), `threshold` (MeV, the readout threshold: generated voxels below it become
    0; "auto" learns the training showers' smallest non-zero voxel, None applies none), `alpha`
    of the logit, `margin` of the energy scale, `training` (a `TrainingConfig` or a mapping of
    some of its fields, for every network), `random_state`, `device` of the networks ("cuda" to
    train on a GPU; `to_device` moves a loaded model) and `verbose` (progress bars on stderr
    when it is a terminal).
    """

    registry = SHOWER_MODELS
    file_format = "resonance-search/shower-model"
    kind = "shower model"
    _fitted: ClassVar[tuple[str, ...]] = ("geometry_", "preprocessing_", "models_")
    #: the model's own training defaults, which a partial `training` mapping updates
    TRAINING: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        geometry: str | os.PathLike | CaloGeometry = "1-photons",
        noise: float = 1e-3,
        threshold: float | Literal["auto"] | None = "auto",
        alpha: float = 1e-6,
        margin: float = 0.1,
        training: TrainingConfig | dict[str, Any] | None = None,
        random_state: int | None = None,
        device: str = "cpu",
        verbose: bool = True,
    ) -> None:
        self.geometry = geometry
        self.noise = noise
        self.threshold = threshold
        self.alpha = alpha
        self.margin = margin
        self.training = training
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

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
        seeds = self._fit_seeds(4)
        self.geometry_ = geometry
        self.n_voxels_ = geometry.n_voxels
        self.threshold_ = self._learn_threshold(data.showers)
        self.preprocessing_, self.models_ = self._fit_models(data, seeds[:3])
        return self

    def sample(
        self,
        incident_energies: Any,
        *,
        batch_size: int = 10_000,
        random_state: int | None = None,
    ) -> np.ndarray:
        """One shower (MeV, shape (N, n_voxels)) per incident energy, generated in batches.

        Memory beyond the output grows with `batch_size` only. The same `random_state` and
        `batch_size` give the same showers; without `random_state` successive calls draw fresh
        showers from the model's own seeded stream.
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
            batch = self._sample_batch(energies[start:stop], int(seeds[i]))
            out[start:stop] = np.where(batch < self.threshold_, 0.0, batch)
        return out

    def to_bytes(self) -> bytes:
        """The fitted model as bytes (the content of a `save` file)."""
        check_is_fitted(self, self._fitted)
        meta = {
            "geometry": _geometry_to_dict(self.geometry_),
            "threshold": self.threshold_,
            "preprocessing": self.preprocessing_.to_dict(),
            "extra": self._extra_state(),
        }
        models = {key: model.to_bytes() for key, model in self.models_.items()}
        return self._pack(meta, {"models": models})

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "the data") -> ShowerModel:
        """Restore a model from `to_bytes`, checking every embedded network's checksum too."""
        model, meta, tensors = cls._unpack(data, source)
        model.geometry_ = _geometry_from_dict(meta["geometry"])
        model.n_voxels_ = model.geometry_.n_voxels
        model.threshold_ = float(meta["threshold"])
        model.preprocessing_ = step_from_dict(meta["preprocessing"])
        model._set_extra_state(meta["extra"])
        model.models_ = {
            key: DensityModel.from_bytes(value, source=f"{source} (network {key!r})")
            for key, value in tensors["models"].items()
        }
        model.device = next(iter(model.models_.values())).device
        return model

    def to_device(self, device: str) -> ShowerModel:
        """Move the fitted networks to `device` (e.g. a GPU-trained model onto the CPU)."""
        check_is_fitted(self, self._fitted)
        self.device = device
        for model in self.models_.values():
            model.device = device
            model.module_.to(device)
        return self

    @classmethod
    def _encode_param(cls, value: Any) -> Any:
        if isinstance(value, CaloGeometry):
            return {"__geometry__": _geometry_to_dict(value)}
        return super()._encode_param(value)

    @classmethod
    def _decode_param(cls, value: Any) -> Any:
        if isinstance(value, dict) and "__geometry__" in value:
            return _geometry_from_dict(value["__geometry__"])
        return super()._decode_param(value)

    # -- helpers --------------------------------------------------------------------------------
    def _learn_threshold(self, showers: np.ndarray) -> float:
        if self.threshold is None:
            return 0.0
        if self.threshold == "auto":
            positive = showers[showers > 0]
            return float(positive.min()) if positive.size else 0.0
        value = float(self.threshold)
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"threshold must be 'auto', None or an energy >= 0 MeV, got {value}")
        return value

    def _extra_state(self) -> dict[str, Any]:
        """Fitted values beyond the preprocessing and networks, JSON-serialisable."""
        return {}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what `_extra_state` returned."""

    def _training(self, override: Any = None, defaults: Any = None) -> TrainingConfig:
        """The training of one network: the model's ``TRAINING``, then the network's own
        `defaults`, then `training`, then the fields `override` names."""
        model = TrainingConfig.coerce(defaults, defaults=self.TRAINING)
        base = TrainingConfig.coerce(self.training, defaults=model)
        return TrainingConfig.coerce(override, defaults=base)

    def _network(
        self,
        model_cls: type[DensityModel],
        defaults: dict[str, Any],
        override: dict[str, Any] | None,
        seed: int,
        key: str,
    ) -> DensityModel:
        """An unfitted network `key` of this model: `defaults` updated by `override` (their
        "training" entries changing only the fields they name), standardised inputs, seeded, on
        `device`; a training checkpoint ``run.ckpt`` becomes ``run.<key>.ckpt`` for it."""
        training = self._training((override or {}).get("training"), defaults.get("training"))
        if training.checkpoint:
            path = Path(training.checkpoint)
            checkpoint = str(path.with_name(f"{path.stem}.{key}{path.suffix}"))
            training = dataclasses.replace(training, checkpoint=checkpoint)
        return model_cls(
            **flow_params(defaults, override),
            preprocessing="standard",
            context_preprocessing="standard",
            training=training,
            random_state=int(seed),
            device=self.device,
            verbose=self.verbose,
        )

    def _base_steps(self, seed: int) -> list:
        return [Dequantize(self.noise, int(seed)), RelativeToIncident(self.margin)]

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

    def _joint_features(self, data: ShowerData, seed: int) -> tuple[ShowerPipeline, np.ndarray]:
        """The base preprocessing and the joint features: logit energy fractions, then shapes."""
        pre, energies, shapes = self._decompose(data, seed)
        x = np.concatenate([self._energy_features(energies), self._shape_features(shapes)], axis=1)
        return pre, x

    def _joint_showers(self, z: np.ndarray, incident: np.ndarray) -> np.ndarray:
        """Showers (MeV) from joint features (the inverse of `_joint_features`)."""
        n_layers = len(self.geometry_.active_layers)
        energies = self._energies_from_features(z[:, :n_layers])
        return self._compose(energies, z[:, n_layers:], incident)

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
