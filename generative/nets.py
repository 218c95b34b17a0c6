"""The network family shared by the generative models: MLPs with time and context embeddings.

`MLP` is the plain building block (GAN generator and critic, VAE encoder and decoder, the
classifiers and autoencoders of `anomaly`, the classifier test of `generative.calo`).
`TimeConditionedMLP` is the denoiser / velocity field of flow matching and diffusion: the time
enters through a sinusoidal or random-Fourier embedding, the context through a small MLP, and
both condition every residual block of the trunk additively.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

__all__ = [
    "MLP",
    "ContextEmbedding",
    "TimeConditionedMLP",
    "TimeEmbedding",
    "validation_generator",
]

#: seed of the noise used for validation losses (see `validation_generator`)
VALIDATION_SEED = 1234


def validation_generator(module: nn.Module, device: torch.device) -> torch.Generator | None:
    """A freshly seeded generator in eval mode, None (torch's global generator) in train mode.

    Stochastic losses (random times, noise, projections) evaluated on validation data with the
    same random numbers every epoch differ from epoch to epoch only through the weights, which
    keeps early stopping from chasing noise (common random numbers).
    """
    if module.training:
        return None
    return torch.Generator(device=device).manual_seed(VALIDATION_SEED)


def _activation(name: str, negative_slope: float = 0.2) -> nn.Module:
    # Leaky ReLU with the slope usual in GANs by default, so critics pass gradient for negative
    # inputs; the CaloChallenge classifier uses torch's default slope 0.01.
    activations = {
        "silu": nn.SiLU,
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "leaky_relu": lambda: nn.LeakyReLU(negative_slope),
    }
    try:
        return activations[name]()
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(activations)}, got {name!r}") from None


class MLP(nn.Sequential):
    """Fully connected network: the one MLP builder of the package (generators, critics, VAE
    encoders and decoders, the anomaly classifiers and autoencoders, the shower classifier test).

    `hidden_features` is either one width used for `n_layers` hidden layers or the sequence of
    hidden widths (then `n_layers` is not used; an empty sequence gives one linear layer). Each
    hidden layer is linear, optionally layer-normalised, activated, optionally dropped out.
    `spectral_norm` wraps every linear layer in spectral normalisation (a Lipschitz critic);
    `layer_norm` normalises each hidden layer (safe with a gradient penalty, unlike batch norm).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int | Sequence[int] = 128,
        n_layers: int = 3,
        *,
        activation: str = "silu",
        negative_slope: float = 0.2,
        layer_norm: bool = False,
        spectral_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        if isinstance(hidden_features, int):
            if n_layers < 1 or hidden_features < 1:
                raise ValueError(
                    f"an MLP needs n_layers >= 1 and hidden_features >= 1, got {n_layers} and "
                    f"{hidden_features}"
                )
            widths = [hidden_features] * n_layers
        else:
            widths = [int(w) for w in hidden_features]
            if any(w < 1 for w in widths):
                raise ValueError(f"hidden widths must be positive, got {widths}")

        def linear(n_in: int, n_out: int) -> nn.Module:
            layer = nn.Linear(n_in, n_out)
            return nn.utils.parametrizations.spectral_norm(layer) if spectral_norm else layer

        layers: list[nn.Module] = []
        width = in_features
        for hidden in widths:
            layers.append(linear(width, hidden))
            if layer_norm:
                layers.append(nn.LayerNorm(hidden))
            layers.append(_activation(activation, negative_slope))
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(linear(width, out_features))
        super().__init__(*layers)


class TimeEmbedding(nn.Module):
    """Embed times t in [0, 1] as `dim` sines and cosines.

    'sinusoidal': the transformer frequencies exp(-ln(max_period) k / half) applied to 1000 t
    (the DDPM convention, covering periods from 1/1000 to 10 time units). 'fourier': random
    Gaussian frequencies of standard deviation `scale` (Tancik et al. 2020), drawn once from
    torch's global generator (seeded by the model) and kept as a buffer so they are saved.
    """

    def __init__(
        self,
        dim: int = 32,
        kind: Literal["sinusoidal", "fourier"] = "sinusoidal",
        *,
        max_period: float = 10_000.0,
        scale: float = 16.0,
    ) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"time_embedding_dim must be an even number >= 2, got {dim}")
        half = dim // 2
        if kind == "sinusoidal":
            freqs = 1000.0 * torch.exp(-math.log(max_period) * torch.arange(half) / half)
        elif kind == "fourier":
            freqs = 2.0 * math.pi * scale * torch.randn(half)
        else:
            raise ValueError(f"time_embedding must be 'sinusoidal' or 'fourier', got {kind!r}")
        self.register_buffer("freqs", freqs)
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """(n,) or (n, 1) times -> (n, dim) features."""
        args = t.reshape(-1, 1) * self.freqs
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class ContextEmbedding(nn.Sequential):
    """Two-layer MLP mapping the (preprocessed) context to `dim` features."""

    def __init__(self, n_context: int, dim: int = 32, activation: str = "silu") -> None:
        super().__init__(nn.Linear(n_context, dim), _activation(activation), nn.Linear(dim, dim))


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, cond_width: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.inner = nn.Linear(width, width)
        self.cond = nn.Linear(cond_width, width)
        self.act = _activation(activation)
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.outer = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        u = self.act(self.inner(self.norm(h)) + self.cond(cond))
        return h + self.outer(self.drop(u))


class TimeConditionedMLP(nn.Module):
    """f(x, t, context) -> R^n_features: a residual MLP conditioned on time and context.

    The input is projected to `hidden_features`, passed through `n_blocks` pre-norm residual
    blocks each receiving the concatenated time and context embeddings, and projected back. The
    output layer starts at zero so an untrained velocity / noise prediction is 0 (a stable start).
    """

    def __init__(
        self,
        n_features: int,
        n_context: int = 0,
        *,
        hidden_features: int = 128,
        n_blocks: int = 3,
        time_embedding: Literal["sinusoidal", "fourier"] = "sinusoidal",
        time_embedding_dim: int = 32,
        context_embedding_dim: int = 32,
        activation: str = "silu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if n_blocks < 1 or hidden_features < 1:
            raise ValueError(
                f"need n_blocks >= 1 and hidden_features >= 1, got {n_blocks} and {hidden_features}"
            )
        self.n_features = n_features
        self.n_context = n_context
        self.time_embedding = TimeEmbedding(time_embedding_dim, time_embedding)
        self.context_embedding = (
            ContextEmbedding(n_context, context_embedding_dim, activation) if n_context else None
        )
        cond_width = time_embedding_dim + (context_embedding_dim if n_context else 0)
        self.input = nn.Linear(n_features, hidden_features)
        self.blocks = nn.ModuleList(
            _ResidualBlock(hidden_features, cond_width, activation, dropout)
            for _ in range(n_blocks)
        )
        self.output = nn.Sequential(
            nn.LayerNorm(hidden_features),
            _activation(activation),
            nn.Linear(hidden_features, n_features),
        )
        nn.init.zeros_(self.output[-1].weight)
        nn.init.zeros_(self.output[-1].bias)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor | float, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Evaluate at events `x` (n, d), times `t` (scalar, (n,) or (n, 1)) and `context`."""
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1)
        cond = self.time_embedding(t.expand(x.shape[0]) if t.numel() == 1 else t)
        if self.context_embedding is not None:
            if context is None:
                raise ValueError(f"this network is conditional on {self.n_context} variables")
            cond = torch.cat([cond, self.context_embedding(context)], dim=-1)
        h = self.input(x)
        for block in self.blocks:
            h = block(h, cond)
        return self.output(h)
