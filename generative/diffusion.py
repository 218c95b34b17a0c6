"""Conditional denoising diffusion (DDPM) with a variance-preserving schedule."""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

import torch

from generative.continuous import ContinuousTimeModel
from generative.nets import TimeConditionedMLP, validation_generator
from generative.training import History

__all__ = ["Diffusion", "NoiseSchedule"]

SAMPLERS = ("ancestral", "ddim", "ode")
PREDICTIONS = ("eps", "v")


class NoiseSchedule:
    """Variance-preserving schedule x_t = alpha_t x + sigma_t eps, alpha^2 + sigma^2 = 1.

    Written through the log signal-to-noise ratio lambda(t) = log(alpha^2 / sigma^2) on
    t in [0, 1] (Kingma et al., arXiv:2107.00630), bounded to [`logsnr_min`, `logsnr_max`] so
    neither end divides by zero. 'cosine' (Nichol & Dhariwal): lambda = -2 log tan(a t + b),
    i.e. alpha = cos, sigma = sin of an angle linear in t. 'linear': the continuous limit of
    DDPM's betas linear from 1e-4 to 0.02 over 1000 steps, alpha^2 = exp(-(0.1 t + 9.95 t^2)),
    clipped at `logsnr_max`.
    """

    BETA_MIN, BETA_MAX = 0.1, 20.0

    def __init__(
        self, kind: str = "cosine", logsnr_min: float = -10.0, logsnr_max: float = 10.0
    ) -> None:
        if kind not in ("cosine", "linear"):
            raise ValueError(f"schedule must be 'cosine' or 'linear', got {kind!r}")
        if not logsnr_min < logsnr_max:
            raise ValueError(f"need logsnr_min < logsnr_max, got {logsnr_min}, {logsnr_max}")
        self.kind = kind
        self.logsnr_max = logsnr_max
        self._b = math.atan(math.exp(-0.5 * logsnr_max))
        self._a = math.atan(math.exp(-0.5 * logsnr_min)) - self._b

    def _gamma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-log alpha^2 of the linear schedule and its time derivative."""
        delta = self.BETA_MAX - self.BETA_MIN
        return self.BETA_MIN * t + 0.5 * delta * t**2, self.BETA_MIN + delta * t

    def logsnr(self, t: torch.Tensor) -> torch.Tensor:
        """lambda(t), decreasing from about logsnr_max at t = 0."""
        # Adaptive solvers step past the end and interpolate back: use the nearest end there.
        t = t.clamp(0.0, 1.0)
        if self.kind == "cosine":
            return -2.0 * torch.log(torch.tan(self._a * t + self._b))
        gamma, _ = self._gamma(t)
        return (-torch.log(torch.expm1(gamma))).clamp(max=self.logsnr_max)

    def dlogsnr_dt(self, t: torch.Tensor) -> torch.Tensor:
        """d lambda / dt (negative; zero where the linear schedule is clipped)."""
        t = t.clamp(0.0, 1.0)
        if self.kind == "cosine":
            return -4.0 * self._a / torch.sin(2.0 * (self._a * t + self._b))
        gamma, dgamma = self._gamma(t)
        slope = dgamma / torch.expm1(-gamma)
        return torch.where(-torch.log(torch.expm1(gamma)) > self.logsnr_max, 0.0, slope)

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha_t, sigma_t)."""
        lam = self.logsnr(t)
        return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()


class Diffusion(ContinuousTimeModel):
    """Denoising diffusion model p(x | context) (DDPM in continuous time).

    Training (Ho et al., arXiv:2006.11239, in continuous time): t ~ U(0, 1), x_t = alpha_t x +
    sigma_t eps, and the network regresses the noise eps (`prediction="eps"`) or the velocity
    v = alpha_t eps - sigma_t x (`prediction="v"`, Salimans & Ho arXiv:2202.00512, better
    behaved at low signal-to-noise), with the `schedule` 'cosine' or 'linear' (`NoiseSchedule`).

    Sampling on `steps` evenly spaced times from t = 1 to 0 (DDPM respacing): `sampler`
    'ancestral' draws from the DDPM posterior q(x_s | x_t, x_hat) at each step; 'ddim' is the
    deterministic DDIM update (Song et al., arXiv:2010.02502), good with few steps (20-50);
    'ode' integrates the probability-flow ODE with `solver` (rk4 by default) and `steps`. The
    last step returns the denoised estimate x_hat. With `clip_denoised` (default) the 'ancestral'
    and 'ddim' samplers clip x_hat to the range of the preprocessed training data, as DDPM clips
    images to [-1, 1]: with noise prediction x_hat = (x - sigma eps_hat) / alpha multiplies the
    network's error by sigma / alpha (about 150 at the noisy end), and without the clip a few
    per mille of DDIM samples land tens of standard deviations away ('ode' is not clipped, so it
    follows the same ODE as `log_prob`; prefer velocity prediction with it).

    `log_prob` integrates the probability-flow ODE dx/dt = lambda'(t) / 2 (sigma^2 x - sigma
    eps_hat) from the data (t = 0) to the base N(0, I) (t = 1) with the divergence, through the
    same code as flow matching (network, solver and divergence settings of
    `generative.continuous.ContinuousTimeModel`). The likelihood is that of the model's ODE, not
    of its ancestral sampler: the two agree only as well as the network matches the score.
    """

    name = "diffusion"
    data_time = 0.0
    base_time = 1.0

    def __init__(
        self,
        *,
        schedule: Literal["cosine", "linear"] = "cosine",
        prediction: Literal["eps", "v"] = "v",
        sampler: Literal["ancestral", "ddim", "ode"] = "ddim",
        clip_denoised: bool = True,
        solver: str = "rk4",
        **common: Any,
    ) -> None:
        # The probability-flow ODE bends more than flow matching's near-straight paths: rk4.
        super().__init__(solver=solver, **common)
        self.schedule = schedule
        self.prediction = prediction
        self.sampler = sampler
        self.clip_denoised = clip_denoised

    def _check_options(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if not self.steps >= 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        self._schedule()

    def _build_module(self, n_features: int, n_context: int) -> TimeConditionedMLP:
        module = super()._build_module(n_features, n_context)
        # Buffers, so the range of the training data is saved and loaded with the weights.
        module.register_buffer("data_min", torch.full((n_features,), -torch.inf))
        module.register_buffer("data_max", torch.full((n_features,), torch.inf))
        return module

    def _fit_module(
        self,
        module: TimeConditionedMLP,
        train_data: list[torch.Tensor | None],
        val_data: list[torch.Tensor | None] | None,
        seed: int,
    ) -> History:
        module.data_min.copy_(train_data[0].amin(dim=0))
        module.data_max.copy_(train_data[0].amax(dim=0))
        return super()._fit_module(module, train_data, val_data, seed)

    def _schedule(self) -> NoiseSchedule:
        return NoiseSchedule(self.schedule)

    def _loss(
        self, module: TimeConditionedMLP, x: torch.Tensor, c: torch.Tensor | None
    ) -> torch.Tensor:
        gen = validation_generator(module, x.device)
        eps = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        t = torch.rand((x.shape[0], 1), generator=gen, device=x.device, dtype=x.dtype)
        alpha, sigma = self._schedule().alpha_sigma(t)
        target = eps if self.prediction == "eps" else alpha * eps - sigma * x
        return (module(alpha * x + sigma * eps, t, c) - target).pow(2).sum(dim=-1).mean()

    def _denoise(
        self,
        module: TimeConditionedMLP,
        x: torch.Tensor,
        t: torch.Tensor,
        c: torch.Tensor | None,
        *,
        clip: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_hat, eps_hat, alpha_t, sigma_t) from the network's prediction at (x, t).

        With `clip`, x_hat is clipped to the training range and eps_hat recomputed to match it.
        """
        alpha, sigma = self._schedule().alpha_sigma(t)
        out = module(x, t, c)
        if self.prediction == "eps":
            x_hat, eps_hat = (x - sigma * out) / alpha, out
        else:
            x_hat, eps_hat = alpha * x - sigma * out, sigma * x + alpha * out
        if clip:
            x_hat = torch.clamp(x_hat, module.data_min, module.data_max)
            eps_hat = (x - alpha * x_hat) / sigma
        return x_hat, eps_hat, alpha, sigma

    def _velocity(
        self, module: TimeConditionedMLP, t: torch.Tensor, x: torch.Tensor, c: torch.Tensor | None
    ) -> torch.Tensor:
        _, eps_hat, _, sigma = self._denoise(module, x, t, c)
        return 0.5 * self._schedule().dlogsnr_dt(t) * (sigma**2 * x - sigma * eps_hat)

    def _sample_latent(
        self, module: TimeConditionedMLP, n: int, c: torch.Tensor | None
    ) -> torch.Tensor:
        if self.sampler == "ode":
            return self._integrate_from_base(module, n, c)
        device = next(module.parameters()).device
        x = torch.randn((n, module.n_features), device=device)
        schedule, clip = self._schedule(), self.clip_denoised
        times = torch.linspace(1.0, 0.0, self.steps + 1, device=device)
        for t, s in itertools.pairwise(times[:-1]):
            x_hat, eps_hat, alpha_t, sigma_t = self._denoise(module, x, t, c, clip=clip)
            alpha_s, sigma_s = schedule.alpha_sigma(s)
            if self.sampler == "ddim":
                x = alpha_s * x_hat + sigma_s * eps_hat
            else:
                # DDPM posterior q(x_s | x_t, x_hat): variance sigma_s^2 (1 - SNR_t / SNR_s).
                c_ts = -torch.expm1(schedule.logsnr(t) - schedule.logsnr(s))
                mean = (alpha_t * sigma_s**2 / (alpha_s * sigma_t**2)) * x + alpha_s * c_ts * x_hat
                x = mean + sigma_s * c_ts.sqrt() * torch.randn_like(x)
        return self._denoise(module, x, times[-2], c, clip=clip)[0]
