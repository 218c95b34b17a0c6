"""LaCATHODE (arXiv:2210.14924): CATHODE's classifier working in the sideband flow's latent space.

The conditional flow fitted on the sidebands maps every event x at its mass m to a latent point
z = f(x; m), where the background is a unit Gaussian at every mass. The classifier tells the
latent SR data from the latent template (the template is drawn as in CATHODE, so its latent
points are the flow's Gaussian draws) and scores any event at f(x; m): a score that depends on m
only through what the flow did not learn, which reduces the sculpting of the mjj spectrum
outside the signal region. Everything else (template, tests, folds, reference) is CATHODE's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from anomaly.base import SEEN_BY_ALL, WindowEvents
from anomaly.cathode import CATHODE, make_density_model
from generative.base import DensityModel
from generative.flows import MAF
from generative.training import to_tensor

__all__ = ["LaCATHODE", "LatentFold", "latent_map"]


def latent_map(
    model: DensityModel,
    X: np.ndarray,
    mjj: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    *,
    batch_size: int = 100_000,
) -> np.ndarray:
    """Latent point f(x; m) of each event under a fitted normalizing flow.

    Features are first clipped to the sideband range [low, high] the flow was fitted on, so an
    SR event beyond it maps to the boundary instead of to an infinite latent value.
    """
    module = getattr(model, "module_", None)
    if not hasattr(module, "transform_to_noise"):
        raise TypeError(
            f"LaCATHODE needs an invertible flow with a latent space (e.g. 'maf'), got {model!r}"
        )
    Z, C, _ = model.model_space(np.clip(X, low, high), np.asarray(mjj, dtype=np.float64)[:, None])
    out = np.empty_like(Z)
    with torch.no_grad():
        for start in range(0, len(Z), batch_size):
            stop = start + batch_size
            z = module.transform_to_noise(
                to_tensor(Z[start:stop]), context=to_tensor(C[start:stop])
            )
            out[start:stop] = z.double().numpy()
    return out


@dataclass(frozen=True)
class LatentFold:
    """A fold model scoring events by a classifier of their latent points."""

    classifier: Any
    flow: DensityModel
    low: np.ndarray
    high: np.ndarray

    def __call__(self, X: np.ndarray, mjj: np.ndarray | None) -> np.ndarray:
        """Class-1 probability at each event's latent point."""
        if mjj is None:
            raise ValueError("LaCATHODE needs the events' mjj to map them to the latent space")
        return self.classifier.predict_proba(latent_map(self.flow, X, mjj, self.low, self.high))[
            :, 1
        ]


class LaCATHODE(CATHODE):
    """Latent CATHODE: CATHODE's template and tests, the classifier in the flow's latent space.

    Parameters are CATHODE's; the density model must be an invertible flow ('maf', the default).
    Scoring needs `mjj`. Sideband events are scored through the flow that trained on most of
    them, so they count as seen by every model (as ANODE's sidebands).
    """

    needs_mjj = True

    def _prepare(self, window: WindowEvents, seed: np.random.SeedSequence) -> None:
        # Refuse a model without a latent space before spending a fit on it.
        model = make_density_model(self.density_model, self.density_params, seed)
        if not isinstance(model, MAF):
            raise TypeError(
                f"LaCATHODE needs an invertible flow with a latent space ('maf'), got {model!r}"
            )
        super()._prepare(window, seed)
        X_sb = window.X[~window.in_sr]
        self.latent_range_ = (X_sb.min(axis=0), X_sb.max(axis=0))
        low, high = self.latent_range_
        flow = self.density_model_
        self.latent_sr_ = latent_map(flow, window.X_sr, window.mjj_sr, low, high)
        self.latent_reference_ = latent_map(flow, self.reference_, self.reference_mjj_, low, high)

    def _outside_folds(self, window: WindowEvents) -> np.ndarray:
        return np.full(int((~window.in_sr).sum()), SEEN_BY_ALL)

    def _training_set(
        self, window: WindowEvents, train: np.ndarray, fold: int
    ) -> tuple[np.ndarray, np.ndarray]:
        data = self.latent_sr_[train]
        reference = self.latent_reference_[self.reference_fold_ != fold]
        y = np.concatenate([np.ones(len(data)), np.zeros(len(reference))])
        return np.concatenate([data, reference]), y

    def _fit_fold(
        self, window: WindowEvents, train: np.ndarray, fold: int, seed: np.random.SeedSequence
    ) -> LatentFold:
        X, y = self._training_set(window, train, fold)
        low, high = self.latent_range_
        return LatentFold(self._make_classifier(seed).fit(X, y), self.density_model_, low, high)
