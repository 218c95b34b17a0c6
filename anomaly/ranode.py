"""R-ANODE (arXiv:2312.11629): learn only the signal, on top of a fixed interpolated background.

In the signal region (SR) the data are modelled as the mixture

    p_data(x | m) = w p_sig(x | m) + (1 - w) p_bg(x | m),

where p_bg is the conditional density learnt on the sidebands and evaluated (interpolated) at the
SR masses, held fixed, while a small flow p_sig and the signal fraction w = sigmoid(a) (so w stays
in [0, 1]) are learnt together by maximising the mixture likelihood of the SR data of the other
folds. The mjj distributions of signal and background inside the SR are taken to be equal (only
x given m is modelled). The score is log p_sig(x | m) - log p_bg(x | m), floored as ANODE's.

The mixture likelihood has more than one optimum: besides the signal, the signal flow can settle
on where the data exceed the interpolated background by mismodelling or fluctuation, and such a
fold model ranks the signal below the background. Each fold therefore trains several signal
flows from different initialisations on the same validation split and keeps the one with the
lowest validation loss (benchmarks/ranode_restarts.py measures what this does on the LHCO data).

The signal flow lives in the background model's preprocessed space (its feature and context
preprocessing, fitted on the sidebands): the preprocessing's log-Jacobian is common to both
components, so the mixture likelihood needs only their latent densities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from nflows.flows.base import Flow

from anomaly.anode import ANODE, log_density_ratio
from anomaly.base import WindowEvents, seed_int
from anomaly.sideband import SidebandFit
from generative.base import DensityModel
from generative.flows import build_maf
from generative.training import TrainingConfig, seeded, split_indices, to_tensor, train
from generative.validation import check_is_fitted

__all__ = ["RANODE", "SIGNAL_TRAINING", "MixtureFold", "mixture_nll"]

#: training of the signal flow: few epochs of large batches (the background is already learnt);
#: early stopping on held-out SR events keeps the flow from fitting fluctuations as signal
SIGNAL_TRAINING: dict[str, Any] = {
    "epochs": 20,
    "batch_size": 1024,
    "learning_rate": 3e-3,
    "patience": 6,
    "validation_fraction": 0.2,
}


class SignalMixture(torch.nn.Module):
    """A conditional signal flow and the logit of the signal fraction of the mixture."""

    def __init__(self, flow: Flow, fraction: float, speed: float) -> None:
        super().__init__()
        self.flow = flow
        self.start = math.log(fraction / (1 - fraction))
        self.speed = speed
        self.step = torch.nn.Parameter(torch.zeros(()))

    @property
    def fraction_logit(self) -> torch.Tensor:
        """a = a0 + speed * step: Adam moves `step` by about the learning rate per update, and
        the logit of a per-mille fraction is several units away from that of 1%."""
        return self.start + self.speed * self.step

    @property
    def fraction(self) -> float:
        """The signal fraction w = sigmoid(a)."""
        return float(torch.sigmoid(self.fraction_logit.detach()))


def mixture_nll(
    module: SignalMixture, z: torch.Tensor, c: torch.Tensor, log_q_bg: torch.Tensor
) -> torch.Tensor:
    """Mean negative log-likelihood of w q_sig(z | c) + (1 - w) q_bg(z | c), in log space."""
    a = module.fraction_logit
    log_q_sig = module.flow.log_prob(z, context=c)
    terms = torch.stack(
        [
            torch.nn.functional.logsigmoid(a) + log_q_sig,
            torch.nn.functional.logsigmoid(-a) + log_q_bg,
        ]
    )
    return -torch.logsumexp(terms, dim=0).mean()


def _signal_flow(n_features: int, n_transforms: int, hidden_features: int) -> Flow:
    """A small affine MAF conditioned on the (preprocessed) mass: MADEs of two residual blocks
    (nflows' default), reverse permutations, no batch normalisation."""
    return build_maf(
        n_features,
        1,
        n_transforms=n_transforms,
        hidden_features=hidden_features,
        n_blocks=2,
        residual_blocks=True,
        batch_norm=False,
    )


def _latent(background: DensityModel, X: np.ndarray, mjj: np.ndarray):
    """Events and masses in the background model's preprocessed space, its log-Jacobian."""
    z, c, logdet = background.model_space(X, mjj[:, None])
    inside = np.isfinite(z).all(axis=1) & np.isfinite(logdet)
    return z, c, logdet, inside


@dataclass(frozen=True)
class MixtureFold:
    """A fold model scoring events by log p_sig(x | mjj) - log p_bg(x | mjj)."""

    signal: SignalMixture
    background: DensityModel
    floor: float
    #: best validation loss of each restart of this fold's training; the kept one is the lowest
    restart_losses: tuple[float, ...] = ()

    @property
    def fraction(self) -> float:
        """The signal fraction this fold learnt."""
        return self.signal.fraction

    def log_prob_signal(self, X: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """Log-density of the signal flow in data space; -inf outside the background's support."""
        z, c, logdet, inside = _latent(self.background, X, mjj)
        out = np.full(len(X), -np.inf)
        with torch.no_grad():
            lp = self.signal.flow.log_prob(to_tensor(z[inside]), context=to_tensor(c[inside]))
        out[inside] = lp.double().numpy() + logdet[inside]
        return out

    def __call__(self, X: np.ndarray, mjj: np.ndarray | None) -> np.ndarray:
        """Floored log-density ratio of signal and background at each event's mass."""
        if mjj is None:
            raise ValueError("R-ANODE needs the events' mjj to evaluate its conditional densities")
        log_p_bg = self.background.log_prob(X, mjj[:, None])
        return log_density_ratio(self.log_prob_signal(X, mjj), log_p_bg, self.floor)


@dataclass(frozen=True)
class _TrainedSignal:
    """A trained signal mixture and its best validation loss (NaN without validation events)."""

    module: SignalMixture
    validation_loss: float


class RANODE(ANODE):
    """Residual ANODE: a signal flow and signal fraction fitted over the fixed background.

    `density_model`/`density_params` configure the sideband background model, fitted as
    ANODE's and CATHODE's (`sideband_fit_`, its model `sideband_model_`); `sideband_fit` (an
    `anomaly.sideband.SidebandFit` of this window, e.g. a CATHODE's `fit_sideband`) is used
    instead, so no second copy is trained. The signal flow is an affine MAF of
    `signal_transforms` MADE blocks with `signal_hidden` units, trained with `signal_training`
    (fields of `TrainingConfig` updating `SIGNAL_TRAINING`; its validation share of the fold's
    SR events picks the best epoch) from a signal fraction of `initial_fraction`. Each fold
    trains `n_restarts` signal flows from different seeds on the same validation events and
    keeps the one with the lowest validation loss (1: a single start). Fitted attributes besides
    the base ones: `signal_fractions_` (w learnt by each fold model) and `restart_losses_` (per
    fold the validation loss of each restart), both also in `result_.diagnostics`.
    `score_samples` needs `mjj`.
    """

    def __init__(
        self,
        *,
        density_model: str | DensityModel = "maf",
        density_params: dict[str, Any] | None = None,
        sideband_fit: SidebandFit | None = None,
        signal_transforms: int = 3,
        signal_hidden: int = 32,
        signal_training: dict[str, Any] | None = None,
        initial_fraction: float = 0.01,
        fraction_speed: float = 30.0,
        n_restarts: int = 5,
        log_density_floor: float = -100.0,
        n_folds: int = 5,
        random_state: int | None = None,
    ) -> None:
        super().__init__(
            density_model=density_model,
            density_params=density_params,
            sideband_fit=sideband_fit,
            log_density_floor=log_density_floor,
            n_folds=n_folds,
            random_state=random_state,
        )
        self.signal_transforms = signal_transforms
        self.signal_hidden = signal_hidden
        self.signal_training = signal_training
        self.initial_fraction = initial_fraction
        self.fraction_speed = fraction_speed
        self.n_restarts = n_restarts

    @property
    def signal_fractions_(self) -> np.ndarray:
        """The signal fraction w learnt by each fold model."""
        check_is_fitted(self, ("fold_models_",))
        return np.array([model.fraction for model in self.fold_models_])

    @property
    def restart_losses_(self) -> np.ndarray:
        """Per fold (rows) the best validation loss of each restart (columns)."""
        check_is_fitted(self, ("fold_models_",))
        return np.array([model.restart_losses for model in self.fold_models_])

    def _check_settings(self) -> None:
        if not 0 < self.initial_fraction < 1:
            raise ValueError(f"initial_fraction must be in (0, 1), got {self.initial_fraction}")
        for name in ("signal_transforms", "signal_hidden", "n_restarts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def _diagnostics(self) -> dict[str, Any]:
        return {
            "signal_fractions": self.signal_fractions_.tolist(),
            "restart_losses": self.restart_losses_.tolist(),
        }

    def _prepare(self, window: WindowEvents, seed: np.random.SeedSequence) -> None:
        self._check_settings()
        self.training_config_ = TrainingConfig.coerce(self.signal_training, SIGNAL_TRAINING)
        if self.n_restarts > 1 and self.training_config_.validation_fraction <= 0:
            raise ValueError(
                f"n_restarts={self.n_restarts} needs validation events to choose between the "
                "restarts: set signal_training validation_fraction above 0"
            )
        super()._prepare(window, seed)

    def _fit_fold(
        self, window: WindowEvents, train_rows: np.ndarray, fold: int, seed: np.random.SeedSequence
    ) -> MixtureFold:
        background = self.sideband_model_
        X, mjj = window.X_sr[train_rows], window.mjj_sr[train_rows]
        z, c, logdet, inside = _latent(background, X, mjj)
        # Events outside the sidebands' support have no background density: no mixture there.
        log_q_bg = background.log_prob(X[inside], mjj[inside, None]) - logdet[inside]
        z, c = z[inside], c[inside]
        config = self.training_config_
        split_seed, torch_seed = seed.spawn(2)
        rng = np.random.default_rng(split_seed)
        tr, va = split_indices(len(z), config.validation_fraction, rng)
        tensors = [to_tensor(a) for a in (z, c, log_q_bg)]
        # The first restart keeps the seed a single start has, so n_restarts=1 is unchanged.
        restart_seeds = [torch_seed, *torch_seed.spawn(self.n_restarts - 1)]
        losses, best = [], None
        for restart_seed in restart_seeds:
            trained = self._train_signal(tensors, tr, va, X.shape[1], seed_int(restart_seed))
            losses.append(trained.validation_loss)
            if best is None or trained.validation_loss < best.validation_loss:
                best = trained
        return MixtureFold(best.module, background, self.log_density_floor, tuple(losses))

    def _train_signal(
        self,
        tensors: list[torch.Tensor],
        tr: np.ndarray,
        va: np.ndarray,
        n_features: int,
        seed: int,
    ) -> _TrainedSignal:
        """One signal flow and fraction trained from the initialisation of `seed`."""
        with seeded(seed):
            flow = _signal_flow(n_features, self.signal_transforms, self.signal_hidden)
            module = SignalMixture(flow, self.initial_fraction, self.fraction_speed)
        history = train(
            module,
            mixture_nll,
            [t[tr] for t in tensors],
            [t[va] for t in tensors] if len(va) else None,
            config=self.training_config_,
            random_state=seed,
            verbose=False,
            desc="R-ANODE signal",
        )
        return _TrainedSignal(module.eval(), history.best_val_loss)
