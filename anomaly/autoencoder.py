"""Autoencoder outlier score: events the network reconstructs badly are anomalous.

The network learns to reconstruct the data (signal being rare, mostly background), so its
reconstruction error ranks events by how atypical they are. It uses the features only, never
mjj, and knows nothing of the signal region except which events it may train on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from anomaly.base import SEEN_BY_ALL, AnomalyDetector, WindowEvents, seed_int
from generative import training
from generative.nets import MLP
from generative.training import TrainingConfig, seeded, split_indices, to_tensor

__all__ = ["Autoencoder", "AutoencoderNet", "ReconstructionFold"]


class AutoencoderNet(torch.nn.Module):
    """A dense (variational) autoencoder: features -> latent -> features."""

    def __init__(
        self, n_features: int, hidden: tuple[int, ...], latent: int, variational: bool
    ) -> None:
        super().__init__()
        self.variational = variational
        out = 2 * latent if variational else latent
        self.encoder = MLP(n_features, out, list(hidden), activation="relu")
        self.decoder = MLP(latent, n_features, list(reversed(hidden)), activation="relu")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction from the latent mean, latent mean and log-variance (zero for an AE)."""
        h = self.encoder(x)
        if self.variational:
            mu, log_var = h.chunk(2, dim=1)
        else:
            mu, log_var = h, torch.zeros_like(h)
        return self.decoder(mu), mu, log_var

    def reconstruction_error(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared error per event, decoding the latent mean."""
        return ((self.forward(x)[0] - x) ** 2).mean(dim=1)


def _loss(beta: float):
    def loss(module: AutoencoderNet, x: torch.Tensor) -> torch.Tensor:
        if not module.variational:
            return module.reconstruction_error(x).mean()
        _, mu, log_var = module(x)
        # Reparameterised draw: the decoder must cope with the posterior's spread.
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        recon = ((module.decoder(z) - x) ** 2).mean(dim=1)
        kl = -0.5 * (1 + log_var - mu**2 - log_var.exp()).sum(dim=1) / x.shape[1]
        return (recon + beta * kl).mean()

    return loss


@dataclass(frozen=True)
class ReconstructionFold:
    """A fold model scoring standardised events by their reconstruction error."""

    net: AutoencoderNet
    mean: np.ndarray
    scale: np.ndarray

    def __call__(self, X: np.ndarray, mjj: np.ndarray | None = None) -> np.ndarray:
        """Reconstruction error of each event (mjj is ignored)."""
        out = np.empty(len(X))
        Z = (X - self.mean) / self.scale
        with torch.no_grad():
            for start in range(0, len(Z), 100_000):
                z = to_tensor(Z[start : start + 100_000])
                out[start : start + len(z)] = self.net.reconstruction_error(z).double().numpy()
        return out


class Autoencoder(AnomalyDetector):
    """Reconstruction-error detector, optionally a VAE (`variational=True`, KL weight `beta`).

    `train_on`: 'signal_region' (the SR events of the other folds, the default), 'window' (those
    plus all sideband events) or 'sidebands' (sideband events only: one model, out-of-fold for
    every SR event). Features are standardised on the training events. `training` (a
    `TrainingConfig` or a mapping of some of its fields) changes only the fields it names of
    ``TRAINING``, the detector's defaults.
    """

    TRAINING: ClassVar[dict[str, Any]] = {
        "epochs": 30,
        "batch_size": 1024,
        "learning_rate": 1e-3,
        "validation_fraction": 0.2,
    }

    def __init__(
        self,
        *,
        hidden: tuple[int, ...] = (32, 16),
        latent: int = 2,
        variational: bool = False,
        beta: float = 1.0,
        train_on: Literal["window", "signal_region", "sidebands"] = "signal_region",
        training: TrainingConfig | dict[str, Any] | None = None,
        n_folds: int = 5,
        random_state: int | None = None,
    ) -> None:
        super().__init__(n_folds=n_folds, random_state=random_state)
        self.hidden = hidden
        self.latent = latent
        self.variational = variational
        self.beta = beta
        self.train_on = train_on
        self.training = training

    @property
    def trains_on_sr(self) -> bool:  # type: ignore[override]
        """Whether the fold models see SR events (not when trained on the sidebands)."""
        return self.train_on != "sidebands"

    def _outside_folds(self, window: WindowEvents) -> np.ndarray:
        folds = super()._outside_folds(window)
        if self.train_on != "signal_region":
            folds[:] = SEEN_BY_ALL
        return folds

    def _training_events(self, window: WindowEvents, train: np.ndarray) -> np.ndarray:
        if self.train_on not in ("window", "signal_region", "sidebands"):
            raise ValueError(
                f"train_on must be 'window', 'signal_region' or 'sidebands', got {self.train_on!r}"
            )
        if self.train_on == "signal_region":
            return window.X_sr[train]
        sideband = window.X[~window.in_sr]
        if self.train_on == "window":
            return np.concatenate([window.X_sr[train], sideband])
        if len(sideband) == 0:
            raise ValueError("train_on='sidebands' but the sidebands hold no events")
        return sideband

    def _fit_fold(
        self, window: WindowEvents, train: np.ndarray, fold: int, seed: np.random.SeedSequence
    ) -> ReconstructionFold:
        X = self._training_events(window, train)
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale[scale == 0] = 1.0
        Z = to_tensor((X - mean) / scale)
        torch_seed = seed_int(seed)
        config = TrainingConfig.coerce(self.training, defaults=self.TRAINING)
        tr, va = split_indices(
            len(Z), config.validation_fraction, np.random.default_rng(torch_seed)
        )
        with seeded(torch_seed):
            net = AutoencoderNet(X.shape[1], tuple(self.hidden), self.latent, self.variational)
        training.train(
            net,
            _loss(self.beta),
            [Z[torch.as_tensor(tr)]],
            [Z[torch.as_tensor(va)]],
            config=config,
            random_state=torch_seed,
            verbose=False,
            desc="autoencoder",
        )
        return ReconstructionFold(net.eval(), mean, scale)
