"""Conditional variational autoencoder with a Gaussian decoder."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from generative.base import DensityModel
from generative.nets import MLP, validation_generator
from generative.ode import standard_normal_log_prob

__all__ = ["VAE"]

#: bounds of the decoder's log-variance: no zero-width spikes, no variance explosion
LOGVAR_MIN, LOGVAR_MAX = -12.0, 6.0


def _gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((x - mean).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


class _VAEModule(nn.Module):
    """Encoder q(z | x, c) and decoder p(x | z, c), both diagonal Gaussians."""

    def __init__(self, encoder: MLP, decoder: MLP, n_features: int, latent_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.n_features = n_features
        self.latent_dim = latent_dim

    @staticmethod
    def _join(a: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return a if c is None else torch.cat([a, c], dim=-1)

    def encode(self, x: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x, c)."""
        return self.encoder(self._join(x, c)).chunk(2, dim=-1)

    def decode(self, z: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (bounded) log-variance of p(x | z, c)."""
        mean, logvar = self.decoder(self._join(z, c)).chunk(2, dim=-1)
        return mean, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)


class VAE(DensityModel):
    """Conditional VAE (Kingma & Welling, arXiv:1312.6114) with Gaussian encoder and decoder.

    Encoder and decoder are `generative.nets.MLP`s (`hidden_features` x `n_layers`) that see the
    context; the decoder outputs a mean and a bounded log-variance per feature, so sampling
    draws z ~ N(0, I) and then x ~ N(mean(z, c), var(z, c)). Training minimises the negative
    ELBO with one reparametrised sample (`beta` weights the KL term; 1 is the true ELBO).

    `log_prob` is NOT an exact density: it returns the importance-weighted bound
    log (1/K) sum_k p(x | z_k, c) p(z_k) / q(z_k | x, c), z_k ~ q (Burda et al.,
    arXiv:1509.00519) with K = `n_importance`, a stochastic lower bound on log p(x | c) that
    tightens as K grows (its importance samples come from a generator seeded by the model, so
    it is a deterministic function of its inputs). It is usable for ranking events, but ratios
    of two such bounds (ANODE) are biased by the difference of the two gaps.
    """

    name = "vae"

    def __init__(
        self,
        *,
        latent_dim: int = 4,
        hidden_features: int = 128,
        n_layers: int = 3,
        beta: float = 1.0,
        n_importance: int = 100,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.latent_dim = latent_dim
        self.hidden_features = hidden_features
        self.n_layers = n_layers
        self.beta = beta
        self.n_importance = n_importance

    def _build_module(self, n_features: int, n_context: int) -> _VAEModule:
        if not (self.latent_dim >= 1 and self.n_importance >= 1 and self.beta > 0):
            raise ValueError(
                "need latent_dim >= 1, n_importance >= 1 and beta > 0, got "
                f"{self.latent_dim}, {self.n_importance}, {self.beta}"
            )
        width, depth = self.hidden_features, self.n_layers
        encoder = MLP(n_features + n_context, 2 * self.latent_dim, width, depth)
        decoder = MLP(self.latent_dim + n_context, 2 * n_features, width, depth)
        return _VAEModule(encoder, decoder, n_features, self.latent_dim)

    def _loss(self, module: _VAEModule, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        gen = validation_generator(module, x.device)
        mu, logvar = module.encode(x, c)
        eps = torch.randn(mu.shape, generator=gen, device=x.device, dtype=x.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        reconstruction = _gaussian_log_prob(x, *module.decode(z, c))
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
        return (self.beta * kl - reconstruction).mean()

    def _sample_latent(self, module: _VAEModule, n: int, c: torch.Tensor | None) -> torch.Tensor:
        device = next(module.parameters()).device
        mean, logvar = module.decode(torch.randn((n, module.latent_dim), device=device), c)
        return mean + (0.5 * logvar).exp() * torch.randn_like(mean)

    def _log_prob_latent(
        self, module: _VAEModule, x: torch.Tensor, c: torch.Tensor | None
    ) -> torch.Tensor:
        gen = torch.Generator(device=x.device).manual_seed(self.seed_)
        mu, logvar = module.encode(x, c)
        # One importance sample at a time keeps memory at one batch whatever K is.
        weights = torch.empty((self.n_importance, x.shape[0]), device=x.device, dtype=x.dtype)
        for k in range(self.n_importance):
            eps = torch.randn(mu.shape, generator=gen, device=x.device, dtype=x.dtype)
            z = mu + (0.5 * logvar).exp() * eps
            weights[k] = (
                _gaussian_log_prob(x, *module.decode(z, c))
                + standard_normal_log_prob(z)
                - _gaussian_log_prob(z, mu, logvar)
            )
        return torch.logsumexp(weights, dim=0) - math.log(self.n_importance)
