"""What every fitted model of the package shares: registry, seeding and the checked save envelope.

`Estimator` is the base of the density models (`generative.base.DensityModel`) and the shower
models (`generative.calo.ShowerModel`). It gives them

- a registry per family: a class that sets its own `name` registers under it in its family's
  `registry` (a subclass that does not name itself never replaces its parent);
- seeding: one seed per fit (`random_state` or fresh entropy), split into independent streams,
  and a seeded stream of sampling seeds for calls without `random_state`;
- the save envelope: a file is a magic header, the SHA-256 of the payload and the payload, a
  `torch.save` archive of JSON metadata and tensors. Loading checks the header and the checksum
  before reading anything and reads the archive with ``weights_only=True``, so a corrupted or
  foreign file is refused and nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import io
import json
import os
import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator

from generative.fileio import write_atomic
from generative.preprocessing import Transform, step_from_dict
from generative.training import TrainingConfig

__all__ = ["MAGIC", "CorruptFileError", "Estimator", "inherited_param_names", "pack", "unpack"]

#: the first bytes of every model file of the package (format generation 2: checksummed)
MAGIC = b"RSEARCH\x02"
_DIGEST = hashlib.sha256().digest_size


class CorruptFileError(ValueError):
    """A model file that is truncated, altered or not a model file of this package."""


def pack(meta: dict[str, Any], tensors: dict[str, Any]) -> bytes:
    """Envelope bytes: magic, SHA-256 of the payload, payload (JSON `meta` + `tensors`)."""
    buffer = io.BytesIO()
    torch.save({"meta": json.dumps(meta), "tensors": tensors}, buffer)
    payload = buffer.getvalue()
    return MAGIC + hashlib.sha256(payload).digest() + payload


def unpack(data: bytes, source: str = "the data") -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, tensors) of envelope bytes, after checking the header and the checksum."""
    header = len(MAGIC) + _DIGEST
    if len(data) < header or not data.startswith(MAGIC):
        raise CorruptFileError(f"{source} is not a resonance-search model file (bad header)")
    digest, payload = data[len(MAGIC) : header], data[header:]
    if hashlib.sha256(payload).digest() != digest:
        raise CorruptFileError(
            f"{source} is corrupted: its SHA-256 checksum does not match its content "
            "(truncated or altered after it was written)"
        )
    try:
        archive = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        return json.loads(archive["meta"]), archive["tensors"]
    except (pickle.UnpicklingError, RuntimeError, KeyError, TypeError, ValueError) as err:
        # weights_only refuses anything but tensors and plain containers
        raise CorruptFileError(f"{source} holds content other than model data: {err}") from None


def inherited_param_names(cls: type, root: type) -> list[str]:
    """Constructor arguments of `cls` and of every base up to `root` whose `__init__` it extends.

    scikit-learn reads only the most derived `__init__`; models that forward keyword arguments
    to their bases need all of them for `get_params`, `clone` and `repr`.
    """
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    names: set[str] = set()
    for klass in cls.__mro__:
        if issubclass(klass, root) and "__init__" in vars(klass):
            params = inspect.signature(klass.__init__).parameters.values()
            names |= {p.name for p in params if p.name != "self" and p.kind not in skip}
    return sorted(names)


class Estimator(BaseEstimator):
    """Registry, seeding and save envelope shared by the model families of the package."""

    #: short name in the family's registry; only a class that sets it itself registers
    name: ClassVar[str | None] = None
    #: the family's registry (set by the family's base class)
    registry: ClassVar[dict[str, type[Estimator]]] = {}
    #: format tag written into and required from the family's files
    file_format: ClassVar[str] = "resonance-search/model"
    #: what the family is called in error messages
    kind: ClassVar[str] = "model"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Only a class that names itself registers: a user's subclass must not replace its parent.
        if cls.__dict__.get("name") is not None:
            cls.registry[cls.name] = cls

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Constructor arguments of the class and of every base it forwards keywords to."""
        return inherited_param_names(cls, Estimator)

    @classmethod
    def create(cls, name: str, **params: Any) -> Estimator:
        """Construct a registered model of this family by its short name."""
        try:
            model_cls = cls.registry[name]
        except KeyError:
            raise ValueError(
                f"unknown {cls.kind} {name!r}; choose from {sorted(cls.registry)}"
            ) from None
        return model_cls(**params)

    # -- seeding --------------------------------------------------------------------------------
    def _fit_seeds(self, n: int) -> np.ndarray:
        """Set `seed_` (from `random_state` or fresh entropy) and return `n` seeds drawn from it.

        The last of them seeds the stream of sampling seeds (`_next_seed`).
        """
        self.seed_ = (
            int(np.random.SeedSequence().generate_state(1)[0])
            if self.random_state is None
            else int(self.random_state)
        )
        seeds = np.random.SeedSequence(self.seed_).generate_state(n)
        self._start_sampling(int(seeds[-1]))
        return seeds

    def _start_sampling(self, seed: int) -> None:
        self.sample_seed_ = int(seed)
        self._sample_rng = np.random.default_rng(self.sample_seed_)

    def _next_seed(self) -> int:
        return int(self._sample_rng.integers(2**31 - 1))

    # -- the save envelope ----------------------------------------------------------------------
    @classmethod
    def _encode_param(cls, value: Any) -> Any:
        """JSON-safe form of a constructor argument (families extend it)."""
        if isinstance(value, TrainingConfig):
            return {"__training__": value.to_dict()}
        if isinstance(value, Transform):
            return {"__step__": value.to_dict()}
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, tuple):
            return [cls._encode_param(v) for v in value]
        return value

    @classmethod
    def _decode_param(cls, value: Any) -> Any:
        if isinstance(value, dict) and "__training__" in value:
            return TrainingConfig(**value["__training__"])
        if isinstance(value, dict) and "__step__" in value:
            return step_from_dict(value["__step__"])
        return value

    def _params_for_saving(self) -> dict[str, Any]:
        return self.get_params(deep=False)

    def _pack(self, meta: dict[str, Any], tensors: dict[str, Any]) -> bytes:
        """Envelope bytes of this model: class, parameters and seeds beside `meta` and `tensors`."""
        head = {
            "format": self.file_format,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "params": {k: self._encode_param(v) for k, v in self._params_for_saving().items()},
            "seed": self.seed_,
            "sample_seed": self.sample_seed_,
        }
        return pack({**head, **meta}, tensors)

    @classmethod
    def _unpack(cls, data: bytes, source: str) -> tuple[Estimator, dict[str, Any], dict[str, Any]]:
        """An unfitted model of the saved class and parameters (seeds set), its meta and tensors."""
        meta, tensors = unpack(data, source)
        if meta.get("format") != cls.file_format:
            raise CorruptFileError(f"{source} is not a resonance-search {cls.kind} file")
        module_name, _, qualname = str(meta.get("class", "")).partition(":")
        if module_name.split(".")[0] != "generative":
            raise CorruptFileError(f"{source} names a class outside this package: {meta['class']}")
        try:
            model_cls = getattr(importlib.import_module(module_name), qualname)
        except (ImportError, AttributeError):
            unknown = f"{source} holds an unknown {cls.kind} {meta['class']}"
            raise CorruptFileError(unknown) from None
        if not (isinstance(model_cls, type) and issubclass(model_cls, cls)):
            raise TypeError(f"{source} holds a {model_cls.__name__}, not a {cls.__name__}")
        model = model_cls(**{k: cls._decode_param(v) for k, v in meta["params"].items()})
        model.seed_ = meta["seed"]
        model._start_sampling(meta["sample_seed"])
        return model, meta, tensors

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to one file, atomically; `load` restores it exactly."""
        return write_atomic(path, self.to_bytes())

    def to_bytes(self) -> bytes:
        """The fitted model as bytes (the content of a `save` file), e.g. to embed it elsewhere."""
        raise NotImplementedError

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "the data") -> Estimator:
        """Restore a model from `to_bytes`; `source` names where the bytes came from in errors."""
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | os.PathLike) -> Estimator:
        """Read a model written by `save`; on a subclass, the file must hold that class."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no {cls.kind} file at {path}")
        return cls.from_bytes(path.read_bytes(), source=str(path))
