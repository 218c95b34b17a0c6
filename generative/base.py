"""The interface every conditional density model of the project shares.

A model is configured in `__init__`, learns in `fit(X, context)`, and then can `sample`, evaluate
`log_prob` in data space (preprocessing log-Jacobian included) and `save`/`load` itself. Subclasses
provide only the torch network and its loss, sampler and likelihood in the preprocessed space.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np
import torch

from generative.estimator import Estimator
from generative.preprocessing import Pipeline, Step, make_preprocessing, step_from_dict
from generative.registry import DENSITY_MODELS
from generative.training import History, TrainingConfig, seeded, split_indices, to_tensor, train
from generative.validation import check_array, check_context, check_is_fitted

__all__ = ["MODELS", "DensityModel", "make_model"]

#: registry of model names usable in configs, e.g. ``make_model("maf")``
MODELS: dict[str, type[DensityModel]] = {}


def load_builtin_models() -> dict[str, type[DensityModel]]:
    """The registry with every built-in model imported into it (`generative` loads lazily)."""
    for name in DENSITY_MODELS:
        DENSITY_MODELS[name]
    return MODELS


def make_model(name: str, **params: Any) -> DensityModel:
    """Construct a registered density model by its short name."""
    load_builtin_models()
    return DensityModel.create(name, **params)


class DensityModel(Estimator, abc.ABC):
    """A conditional density estimator p(x | context) with a scikit-learn style life cycle.

    Common constructor arguments (every subclass takes them): `preprocessing` of the features
    (a name such as 'logit' or a `Step`/`Pipeline`), `context_preprocessing`, `decorrelate`,
    `training` (a `TrainingConfig` or a mapping of its fields), `random_state`, `device` and
    `verbose`.

    With `decorrelate`, the linear dependence of each preprocessed feature on the preprocessed
    context is fitted by least squares on the training data (`context_shift_`) and subtracted
    before the network sees the events: an exact shift, log-Jacobian 0. The network then models
    what the context does beyond a linear trend, and a model asked for contexts between those it
    trained on (a template in a signal region) carries the trend across exactly.
    """

    registry = MODELS
    file_format = "resonance-search/density-model"
    kind = "density model"
    #: whether `log_prob` is available (a GAN has no tractable likelihood)
    has_log_prob: ClassVar[bool] = True
    _fitted = ("module_", "preprocessing_", "n_features_in_")

    def __init__(
        self,
        *,
        preprocessing: str | Step | None = "logit",
        context_preprocessing: str | Step | None = "standard",
        decorrelate: bool = False,
        training: TrainingConfig | dict[str, Any] | None = None,
        random_state: int | None = None,
        device: str = "cpu",
        verbose: bool = True,
    ) -> None:
        self.preprocessing = preprocessing
        self.context_preprocessing = context_preprocessing
        self.decorrelate = decorrelate
        self.training = training
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # -- what subclasses provide ---------------------------------------------------------------
    @abc.abstractmethod
    def _build_module(self, n_features: int, n_context: int) -> torch.nn.Module:
        """Build the (untrained) network for the given dimensions."""

    @abc.abstractmethod
    def _loss(
        self, module: torch.nn.Module, x: torch.Tensor, c: torch.Tensor | None
    ) -> torch.Tensor:
        """Mean training loss of a batch in the preprocessed space."""

    @abc.abstractmethod
    def _sample_latent(
        self, module: torch.nn.Module, n: int, c: torch.Tensor | None
    ) -> torch.Tensor:
        """Draw `n` events (one per context row when conditional) in the preprocessed space."""

    def _log_prob_latent(
        self, module: torch.nn.Module, x: torch.Tensor, c: torch.Tensor | None
    ) -> torch.Tensor:
        """Log-density in the preprocessed space (runs under torch.no_grad())."""
        raise NotImplementedError(f"log_prob is not available for {type(self).__name__}")

    def _fit_module(
        self,
        module: torch.nn.Module,
        train_data: list[torch.Tensor | None],
        val_data: list[torch.Tensor | None] | None,
        seed: int,
    ) -> History:
        """Train the network; adversarial models override this to pass their own step."""
        return train(
            module,
            self._loss,
            train_data,
            val_data,
            config=TrainingConfig.coerce(self.training),
            random_state=seed,
            device=self.device,
            verbose=self.verbose,
            desc=type(self).__name__,
        )

    # -- public API -----------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        context: Any = None,
        *,
        X_val: Any = None,
        context_val: Any = None,
    ) -> DensityModel:
        """Learn p(X | context); validation data are split off by seed unless given."""
        X = check_array(X, "X")
        context = check_context(context, X.shape[0])
        config = TrainingConfig.coerce(self.training)
        split_seed, torch_seed, _ = self._fit_seeds(3)

        self.preprocessing_ = make_preprocessing(self.preprocessing).fit(X)
        Z = self._transform(X, "X")
        self.context_preprocessing_ = None
        C = None
        if context is not None:
            self.context_preprocessing_ = make_preprocessing(self.context_preprocessing).fit(
                context
            )
            C = self.context_preprocessing_.forward(context)[0]
        self.context_shift_ = None
        if self.decorrelate:
            if C is None:
                raise ValueError("decorrelate=True needs a context to remove the trend of")
            self.context_shift_ = np.linalg.lstsq(_design(C), Z, rcond=None)[0]
            Z = Z - self._shift(C)

        if X_val is not None:
            X_val = check_array(X_val, "X_val", n_features=X.shape[1])
            context_val = check_context(
                context_val,
                X_val.shape[0],
                n_context=0 if C is None else C.shape[1],
                name="context_val",
            )
            Z_val = self._transform(X_val, "X_val")
            C_val = None if C is None else self.context_preprocessing_.forward(context_val)[0]
            Z_val = Z_val - self._shift(C_val)
            Z_train, C_train = Z, C
        elif config.validation_fraction > 0:
            tr, va = split_indices(
                len(Z), config.validation_fraction, np.random.default_rng(split_seed)
            )
            Z_train, Z_val = Z[tr], Z[va]
            C_train, C_val = (None, None) if C is None else (C[tr], C[va])
        else:
            Z_train, C_train, Z_val, C_val = Z, C, None, None

        self.n_features_in_ = X.shape[1]
        self.n_context_ = 0 if C is None else C.shape[1]
        with seeded(int(torch_seed)):
            module = self._build_module(self.n_features_in_, self.n_context_)
        val = None if Z_val is None else [to_tensor(Z_val), to_tensor(C_val)]
        self.history_ = self._fit_module(
            module, [to_tensor(Z_train), to_tensor(C_train)], val, int(torch_seed)
        )
        self.module_ = module.eval()
        return self

    def sample(
        self, context: Any, *, random_state: int | None = None, batch_size: int = 100_000
    ) -> np.ndarray:
        """Draw one event per context row, or `sample(n)` events from an unconditional model."""
        check_is_fitted(self, self._fitted)
        if isinstance(context, (int, np.integer)):
            if self.n_context_:
                raise ValueError(
                    f"this model is conditional on {self.n_context_} variable(s): pass a context "
                    "array with one row per event instead of a number of events"
                )
            if context < 0:
                raise ValueError(f"number of events must be non-negative, got {context}")
            n, C = int(context), None
        else:
            if not self.n_context_:
                raise ValueError(
                    "this model is unconditional: pass the number of events, sample(n)"
                )
            ctx = check_context(context, None, n_context=self.n_context_, name="context")
            n, C = ctx.shape[0], self.context_preprocessing_.forward(ctx)[0]
        seed = self._next_seed() if random_state is None else int(random_state)
        out = np.empty((n, self.n_features_in_))
        with seeded(seed), torch.no_grad():
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                c = None if C is None else to_tensor(C[start:stop]).to(self.device)
                z = self._sample_latent(self.module_, stop - start, c)
                out[start:stop] = z.detach().cpu().double().numpy()
        return self.preprocessing_.inverse(out + self._shift(C))

    def log_prob(self, X: Any, context: Any = None, *, batch_size: int = 100_000) -> np.ndarray:
        """Log-density of each event in data space; -inf outside the preprocessing's support."""
        check_is_fitted(self, self._fitted)
        if not self.has_log_prob:
            raise NotImplementedError(
                f"log_prob is not available for {type(self).__name__}: no tractable likelihood"
            )
        X = check_array(X, "X", n_features=self.n_features_in_, allow_empty=True)
        Z, C, logdet = self.model_space(X, context)
        out = np.full(X.shape[0], -np.inf)
        inside = np.flatnonzero(np.isfinite(Z).all(axis=1) & np.isfinite(logdet))
        with torch.no_grad():
            for start in range(0, len(inside), batch_size):
                idx = inside[start : start + batch_size]
                c = None if C is None else to_tensor(C[idx]).to(self.device)
                lp = self._log_prob_latent(self.module_, to_tensor(Z[idx]).to(self.device), c)
                out[idx] = lp.detach().cpu().double().numpy() + logdet[idx]
        return out

    def model_space(
        self, X: np.ndarray, context: Any = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Events as the network sees them: features, context and the features' log-Jacobian.

        The features preprocessed (and, with `decorrelate`, their linear context dependence
        removed), the context preprocessed (None for an unconditional model), and per event
        log|det dz/dx|; events outside the preprocessing's support come back non-finite.
        """
        check_is_fitted(self, self._fitted)
        ctx = check_context(context, X.shape[0], n_context=self.n_context_)
        Z, logdet = self.preprocessing_.forward(X)
        C = None if ctx is None else self.context_preprocessing_.forward(ctx)[0]
        return Z - self._shift(C), C, logdet

    def _shift(self, C: np.ndarray | None) -> np.ndarray | float:
        """The fitted linear context dependence of the preprocessed features (0 without one)."""
        return 0.0 if self.context_shift_ is None or C is None else _design(C) @ self.context_shift_

    def _params_for_saving(self) -> dict[str, Any]:
        params = self.get_params(deep=False)
        fitted = {
            "preprocessing": self.preprocessing_,
            "context_preprocessing": self.context_preprocessing_,
        }
        for key in fitted:
            # An unfitted step object as the spec: the fitted one refits identically.
            if isinstance(params.get(key), Step):
                params[key] = fitted[key]
        return params

    def to_bytes(self) -> bytes:
        """The fitted model as bytes (the content of a `save` file), e.g. to embed it elsewhere."""
        check_is_fitted(self, self._fitted)
        meta = {
            "n_features_in": self.n_features_in_,
            "n_context": self.n_context_,
            "preprocessing": self.preprocessing_.to_dict(),
            "context_preprocessing": (
                None
                if self.context_preprocessing_ is None
                else self.context_preprocessing_.to_dict()
            ),
            "history": self.history_.to_dict(),
            "context_shift": None if self.context_shift_ is None else self.context_shift_.tolist(),
        }
        return self._pack(meta, {"state_dict": self.module_.state_dict()})

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "the data") -> DensityModel:
        """Restore a model from `to_bytes`; `source` names where the bytes came from in errors."""
        model, meta, tensors = cls._unpack(data, source)
        model.n_features_in_ = meta["n_features_in"]
        model.n_context_ = meta["n_context"]
        model.preprocessing_ = _as_pipeline(step_from_dict(meta["preprocessing"]))
        ctx = meta["context_preprocessing"]
        model.context_preprocessing_ = None if ctx is None else _as_pipeline(step_from_dict(ctx))
        model.history_ = History(**meta["history"])
        shift = meta.get("context_shift")
        model.context_shift_ = None if shift is None else _shift_array(shift, model, source)
        module = model._build_module(model.n_features_in_, model.n_context_)
        module.load_state_dict(tensors["state_dict"])
        if str(model.device).startswith("cuda") and not torch.cuda.is_available():
            # a model trained on a GPU generates on a machine without one (on the CPU)
            model.device = "cpu"
        model.module_ = module.to(model.device).eval()
        return model

    # -- helpers --------------------------------------------------------------------------------
    def _transform(self, X: np.ndarray, name: str) -> np.ndarray:
        Z = self.preprocessing_.forward(X)[0]
        bad = ~np.isfinite(Z).all(axis=1)
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} events of {name} fall outside the range the preprocessing was "
                "fitted on (e.g. beyond the min-max range before a logit)"
            )
        return Z


def _design(C: np.ndarray) -> np.ndarray:
    """The least-squares design matrix of a linear context dependence: [1, C]."""
    return np.column_stack([np.ones(len(C)), C])


def _shift_array(values: Any, model: DensityModel, source: str) -> np.ndarray:
    """A saved context shift, checked against the model's dimensions (a corrupted file fails)."""
    shift = np.asarray(values, dtype=np.float64)
    expected = (model.n_context_ + 1, model.n_features_in_)
    if shift.shape != expected or not np.isfinite(shift).all():
        raise ValueError(f"{source}: corrupted context shift, shape {shift.shape} not {expected}")
    return shift


def _as_pipeline(step: Step) -> Pipeline:
    return step if isinstance(step, Pipeline) else Pipeline([step])
