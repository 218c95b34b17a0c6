"""The base of the continuous-time models: a velocity network, ODE sampling and ODE likelihood.

Flow matching and diffusion both learn a time-conditioned network whose ODE carries a standard
normal base at one end of t in [0, 1] to the data at the other. What they share lives here: the
network (`generative.nets.TimeConditionedMLP`) and its settings, the solver settings, sampling
by integrating the ODE from the base, and `log_prob` by the instantaneous change of variables
(`generative.ode.log_likelihood`). A subclass supplies its loss, its velocity field and at which
end of the time interval the data sit.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Literal

import torch

from generative.base import DensityModel
from generative.nets import TimeConditionedMLP
from generative.ode import DivergenceKind, ODESolver, integrate, log_likelihood

__all__ = ["ContinuousTimeModel"]


class ContinuousTimeModel(DensityModel):
    """A density model defined by an ODE dx/dt = v(x, t, context) between noise and data.

    Network: `hidden_features`, `n_blocks`, `time_embedding` ('sinusoidal' or 'fourier'),
    `time_embedding_dim`, `context_embedding_dim`, `dropout`. ODE sampling: `solver` ('euler',
    'midpoint', 'rk4' with `steps` steps, or adaptive 'dopri5' with `rtol`/`atol`). Likelihood:
    `log_prob_solver` with `log_prob_steps` (adaptive 'dopri5' by default, since likelihoods need
    more accuracy than samples) and `divergence`: 'auto' is the exact trace up to
    `generative.ode.EXACT_DIVERGENCE_MAX_DIM` (10) features and Hutchinson's estimator with
    `n_probes` Rademacher probes above, 'exact' or 'hutchinson' force one. The probes come from
    a generator seeded by the model, so `log_prob` is a deterministic function of its inputs.
    """

    #: time at which the ODE's state follows the data (the other end is the N(0, I) base)
    data_time: ClassVar[float]
    base_time: ClassVar[float]

    def __init__(
        self,
        *,
        hidden_features: int = 128,
        n_blocks: int = 3,
        time_embedding: Literal["sinusoidal", "fourier"] = "sinusoidal",
        time_embedding_dim: int = 32,
        context_embedding_dim: int = 32,
        dropout: float = 0.0,
        solver: str = "midpoint",
        steps: int = 50,
        log_prob_solver: str = "dopri5",
        log_prob_steps: int = 100,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        divergence: DivergenceKind = "auto",
        n_probes: int = 1,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.hidden_features = hidden_features
        self.n_blocks = n_blocks
        self.time_embedding = time_embedding
        self.time_embedding_dim = time_embedding_dim
        self.context_embedding_dim = context_embedding_dim
        self.dropout = dropout
        self.solver = solver
        self.steps = steps
        self.log_prob_solver = log_prob_solver
        self.log_prob_steps = log_prob_steps
        self.rtol = rtol
        self.atol = atol
        self.divergence = divergence
        self.n_probes = n_probes

    @abc.abstractmethod
    def _velocity(
        self, module: TimeConditionedMLP, t: torch.Tensor, x: torch.Tensor, c: torch.Tensor | None
    ) -> torch.Tensor:
        """dx/dt of the model's ODE at time `t` (a 0-d tensor) and events `x`."""

    def _check_options(self) -> None:
        """Raise ValueError for invalid model-specific settings (called before training)."""

    def _build_module(self, n_features: int, n_context: int) -> TimeConditionedMLP:
        self._check_options()
        # Validate solver settings before training rather than after it.
        self._solver(sampling=True)
        self._solver(sampling=False)
        return TimeConditionedMLP(
            n_features,
            n_context,
            hidden_features=self.hidden_features,
            n_blocks=self.n_blocks,
            time_embedding=self.time_embedding,
            time_embedding_dim=self.time_embedding_dim,
            context_embedding_dim=self.context_embedding_dim,
            dropout=self.dropout,
        )

    def _solver(self, *, sampling: bool) -> ODESolver:
        if sampling:
            return ODESolver(self.solver, self.steps, self.rtol, self.atol)
        return ODESolver(self.log_prob_solver, self.log_prob_steps, self.rtol, self.atol)

    def _integrate_from_base(
        self, module: TimeConditionedMLP, n: int, c: torch.Tensor | None
    ) -> torch.Tensor:
        """Draw base noise and carry it to the data end with the sampling solver."""
        device = next(module.parameters()).device
        x = torch.randn((n, module.n_features), device=device)
        return integrate(
            lambda t, xt: self._velocity(module, t, xt, c),
            x,
            self.base_time,
            self.data_time,
            self._solver(sampling=True),
        )

    def _log_prob_latent(
        self, module: TimeConditionedMLP, x: torch.Tensor, c: torch.Tensor | None
    ) -> torch.Tensor:
        return log_likelihood(
            lambda t, xt: self._velocity(module, t, xt, c),
            x,
            self.data_time,
            self.base_time,
            self._solver(sampling=False),
            divergence=self.divergence,
            n_probes=self.n_probes,
            generator=torch.Generator(device=x.device).manual_seed(self.seed_),
        )
