"""Conditional masked autoregressive flows (MAF) built on nflows."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from nflows.distributions.normal import StandardNormal
from nflows.flows.base import Flow
from nflows.transforms.autoregressive import (
    MaskedAffineAutoregressiveTransform,
    MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
)
from nflows.transforms.base import CompositeTransform, Transform
from nflows.transforms.normalization import BatchNorm
from nflows.transforms.permutations import RandomPermutation, ReversePermutation

from generative.base import DensityModel
from generative.nets import MLP

__all__ = ["MAF", "build_maf"]


class MAF(DensityModel):
    """Masked autoregressive flow p(x | context) with affine or rational-quadratic-spline layers.

    The defaults follow the CATHODE recipe (arXiv:2109.00546): 15 affine MADE transforms with one
    hidden layer of 128 units, reverse permutations and batch normalisation between them, on
    min-max + logit + standardised features, conditioned on the (standardised) context.
    `transform="spline"` gives the rational-quadratic neural spline flow of nflows with `n_bins`
    bins on [-tail_bound, tail_bound] and linear tails. `context_embedding` (an int) maps the
    context through a small MLP of that width before it enters every transform.

    Training settings (epochs, batch size, learning rate, patience, ...) live in `training`
    (see `generative.training.TrainingConfig`).
    """

    name = "maf"

    def __init__(
        self,
        *,
        transform: Literal["affine", "spline"] = "affine",
        n_transforms: int = 15,
        hidden_features: int = 128,
        n_blocks: int = 1,
        residual_blocks: bool = False,
        n_bins: int = 8,
        tail_bound: float = 4.0,
        permutation: Literal["reverse", "random", "none"] = "reverse",
        batch_norm: bool = True,
        context_embedding: int | None = None,
        dropout: float = 0.0,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.transform = transform
        self.n_transforms = n_transforms
        self.hidden_features = hidden_features
        self.n_blocks = n_blocks
        self.residual_blocks = residual_blocks
        self.n_bins = n_bins
        self.tail_bound = tail_bound
        self.permutation = permutation
        self.batch_norm = batch_norm
        self.context_embedding = context_embedding
        self.dropout = dropout

    def _layer(self, index: int, n_features: int, n_context: int) -> Transform:
        """Transform number `index` of the flow (a MADE here; couplings in `CouplingFlow`)."""
        common = {
            "features": n_features,
            "hidden_features": self.hidden_features,
            "context_features": n_context or None,
            "num_blocks": self.n_blocks,
            "use_residual_blocks": self.residual_blocks,
            "dropout_probability": self.dropout,
        }
        if self.transform == "affine":
            return MaskedAffineAutoregressiveTransform(**common)
        if self.transform == "spline":
            return MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                num_bins=self.n_bins, tails="linear", tail_bound=self.tail_bound, **common
            )
        raise ValueError(f"transform must be 'affine' or 'spline', got {self.transform!r}")

    #: the `permutation` choices, for the error naming them
    _PERMUTATIONS: ClassVar[tuple[str, ...]] = ("reverse", "random", "none")

    def _permutation(self, n_features: int) -> Transform | None:
        if self.permutation == "reverse":
            return ReversePermutation(n_features)
        if self.permutation == "random":
            return RandomPermutation(n_features)
        if self.permutation == "none":
            return None
        *others, last = (repr(name) for name in self._PERMUTATIONS)
        raise ValueError(
            f"permutation must be {', '.join(others)} or {last}, got {self.permutation!r}"
        )

    def _permutation_after(self, index: int, n_features: int) -> Transform | None:
        """The permutation between transform `index` and the next (`CouplingFlow` skips some)."""
        return self._permutation(n_features)

    def _build_module(self, n_features: int, n_context: int) -> Flow:
        if self.n_transforms < 1:
            raise ValueError(f"n_transforms must be at least 1, got {self.n_transforms}")
        embedding = None
        width = n_context
        if self.context_embedding and n_context:
            width = int(self.context_embedding)
            embedding = MLP(n_context, width, width, 1, activation="relu")
        layers: list[Transform] = []
        for i in range(self.n_transforms):
            layers.append(self._layer(i, n_features, width))
            if i < self.n_transforms - 1:
                if self.batch_norm:
                    layers.append(BatchNorm(n_features))
                perm = self._permutation_after(i, n_features)
                if perm is not None and n_features > 1:
                    layers.append(perm)
        return Flow(CompositeTransform(layers), StandardNormal([n_features]), embedding)

    def _loss(self, module: Flow, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return -module.log_prob(x, context=c).mean()

    def _log_prob_latent(
        self, module: Flow, x: torch.Tensor, c: torch.Tensor | None
    ) -> torch.Tensor:
        return module.log_prob(x, context=c)

    def _sample_latent(self, module: Flow, n: int, c: torch.Tensor | None) -> torch.Tensor:
        if c is None:
            return module.sample(n)
        # nflows draws `num_samples` per context row: one each, then drop that axis.
        return module.sample(1, context=c).squeeze(1)


def build_maf(n_features: int, n_context: int, **settings: Any) -> Flow:
    """The untrained nflows network of a `MAF` with these settings (`MAF`'s arguments).

    For flows trained by hand inside another model (R-ANODE's signal flow) that must be built
    exactly as the MAF estimator builds its own.
    """
    return MAF(**settings)._build_module(n_features, n_context)
