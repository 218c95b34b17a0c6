"""The sideband density fit shared by the density detectors (CATHODE, LaCATHODE, ANODE, R-ANODE).

Each of them learns p(x | mjj) on the window's sidebands the same way: a seeded density model
trained on the sidebands minus a random validation share (its training config's
`validation_fraction`), which picks the best epoch and stays held out (CATHODE's sideband test
and control sample are made of it). `SidebandFit` is that fit as a record. With the same
`random_state` and density settings every density detector fits the same one, so a comparison
fits it once (`fit_sideband`) and hands it to all of them (`sideband_fit=`): each result is
identical to the detector fitting its own. `to_bytes`/`from_bytes` keep a fit in the package's
checksummed model envelope, so an interrupted comparison resumes without refitting it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from anomaly.events import WindowEvents, check_window, sideband_events
from generative.base import DensityModel
from generative.estimator import CorruptFileError, pack, unpack
from generative.training import TrainingConfig, split_indices

__all__ = ["SidebandDensity", "SidebandFit", "fit_sideband_model", "sideband_seeds"]


@dataclass(frozen=True, eq=False)
class SidebandFit:
    """A conditional density model fitted on one window's sidebands, and what it held out."""

    model: DensityModel
    #: positions, among the window's sideband events, of those it did not train on (validation)
    held_out: np.ndarray
    #: digest of the sideband events (features and mjj) it was fitted on
    digest: str
    #: wall and CPU (process) seconds the fit took
    seconds: float
    cpu_seconds: float

    def to_bytes(self) -> bytes:
        """The fit as envelope bytes: its model's own file, what it held out, digest and cost."""
        model = np.frombuffer(self.model.to_bytes(), dtype=np.uint8)
        meta = {
            "format": _FORMAT,
            "digest": self.digest,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
        }
        held_out = np.asarray(self.held_out, dtype=np.int64)
        return pack(
            meta, {"model": torch.from_numpy(model.copy()), "held_out": torch.from_numpy(held_out)}
        )

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "the data") -> SidebandFit:
        """Restore a fit from `to_bytes`; a damaged or foreign file raises `CorruptFileError`."""
        meta, tensors = unpack(data, source)
        if meta.get("format") != _FORMAT:
            raise CorruptFileError(f"{source} is not a resonance-search sideband fit")
        try:
            model_bytes = tensors["model"].numpy().tobytes()
            held_out = tensors["held_out"].numpy()
            digest, seconds, cpu = str(meta["digest"]), meta["seconds"], meta["cpu_seconds"]
        except (KeyError, AttributeError, TypeError) as err:
            raise CorruptFileError(f"{source} is an incomplete sideband fit: {err!r}") from None
        if held_out.ndim != 1 or held_out.dtype != np.int64:
            raise CorruptFileError(f"{source} holds held-out positions of the wrong shape or type")
        model = DensityModel.from_bytes(model_bytes, source=f"the model of {source}")
        return cls(model, held_out, digest, float(seconds), float(cpu))


#: format tag of `SidebandFit.to_bytes`
_FORMAT = "resonance-search/sideband-fit"


def sideband_digest(window: WindowEvents) -> str:
    """SHA-256 (16 hex digits) of the window's sideband features and masses."""
    sb = ~window.in_sr
    data = np.ascontiguousarray(np.c_[window.X[sb], window.mjj[sb]], dtype=np.float64)
    return hashlib.sha256(data.tobytes()).hexdigest()[:16]


def sideband_seeds(
    prepare_seed: np.random.SeedSequence,
) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """The (model, split) seeds of the sideband fit of a detector whose `_prepare` got this seed.

    They are the seeds CATHODE's template has always used (`ReferenceDetector._prepare` hands its
    first child to `CATHODE._reference`, whose first child seeds the model and third the split),
    built without spawning from `prepare_seed`, which stays untouched for the caller.
    """
    reference = np.random.SeedSequence(prepare_seed.entropy, spawn_key=(*prepare_seed.spawn_key, 0))
    model_seed, _, split_seed = reference.spawn(3)
    return model_seed, split_seed


def _validation_split(
    X: np.ndarray, fraction: float, seed: np.random.SeedSequence
) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, validation) rows; validation rows beyond the training range train instead.

    The model's preprocessing is fitted on its training rows: a validation event outside their
    per-feature range would have no density there (before a logit, none at all).
    """
    train, held = split_indices(len(X), fraction, np.random.default_rng(seed))
    low, high = X[train].min(axis=0), X[train].max(axis=0)
    outside = ((X[held] < low) | (X[held] > high)).any(axis=1)
    return np.sort(np.r_[train, held[outside]]), held[~outside]


def fit_sideband_model(
    model: DensityModel, window: WindowEvents, split_seed: np.random.SeedSequence
) -> SidebandFit:
    """Fit the (unfitted, seeded) `model` on the window's sidebands minus a validation share."""
    wall, cpu = time.perf_counter(), time.process_time()
    sb = sideband_events(window)
    X_sb, mjj_sb = window.X[sb], window.mjj[sb]
    fraction = TrainingConfig.coerce(model.training).validation_fraction
    if fraction > 0:
        train, held = _validation_split(X_sb, fraction, split_seed)
        model.fit(
            X_sb[train], mjj_sb[train, None], X_val=X_sb[held], context_val=mjj_sb[held, None]
        )
    else:
        held = np.array([], dtype=np.int64)
        model.fit(X_sb, mjj_sb[:, None])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return SidebandFit(model, held, sideband_digest(window), wall, cpu)


class SidebandDensity:
    """Mixin of the detectors that fit a sideband density: `density_model`, `density_params`
    and `sideband_fit` (a `SidebandFit` of this window to use instead of fitting one)."""

    density_model: str | DensityModel
    density_params: dict[str, Any] | None
    sideband_fit: SidebandFit | None
    #: `AnomalyDetector._seeds`: (prepare, split, fold) seeds, as `fit` draws them
    _seeds: Any

    def fit_sideband(self, X: Any, mjj: Any, in_sr: Any) -> SidebandFit:
        """The sideband fit this detector's `fit` makes on the window (same seeds, same model).

        Pass it as `sideband_fit=` to detectors with the same density settings to spare them
        the fit; with the same `random_state`, their results do not change.
        """
        window = check_window(X, mjj, in_sr)
        model_seed, split_seed = sideband_seeds(self._seeds()[0])
        return self._sideband(window, model_seed, split_seed)

    def _sideband(
        self,
        window: WindowEvents,
        model_seed: np.random.SeedSequence,
        split_seed: np.random.SeedSequence,
    ) -> SidebandFit:
        """The given `sideband_fit`, checked against this window and settings, or a new fit."""
        # Imported here: anomaly.cathode (which holds the default flow) imports this module.
        from anomaly.cathode import make_density_model

        model = make_density_model(self.density_model, self.density_params, model_seed)
        given = self.sideband_fit
        if given is None:
            return fit_sideband_model(model, window, split_seed)
        if not isinstance(given, SidebandFit):
            raise ValueError(f"sideband_fit must be a SidebandFit, got {given!r}")
        if given.digest != sideband_digest(window):
            raise ValueError("sideband_fit was fitted on other sideband events than this window's")
        if type(given.model) is not type(model) or _settings(given.model) != _settings(model):
            raise ValueError(
                "sideband_fit was fitted with other density settings than this detector's "
                f"density_model/density_params: {given.model!r}, not {model!r}"
            )
        return given


def _settings(model: DensityModel) -> dict[str, Any]:
    """A density model's parameters but its seed."""
    params = model.get_params(deep=False)
    params.pop("random_state", None)
    return params
