"""Conditional flow matching on preprocessed showers, given log10 E_inc (an ODE sampler)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from generative.base import DensityModel
from generative.calo.base import ShowerModel
from generative.calo.io import ShowerData
from generative.calo.preprocessing import LogitAlpha, ShowerPipeline
from generative.flow_matching import FlowMatching

__all__ = ["FlowMatchingShowers"]


class FlowMatchingShowers(ShowerModel):
    """Conditional flow matching on the preprocessed showers, given log10 E_inc.

    `representation` 'layers' (default) learns the CaloFlow representation jointly in one
    network: the logit stick-breaking fractions of the layer energies (the first of which is
    E_tot / E_inc) next to the logit normalised shapes, so the energy totals are single features
    rather than sums of hundreds of voxel errors, and generated layers carry exactly their
    generated energies. 'voxels' learns the logit of every voxel energy relative to E_inc.

    `flow` holds keyword arguments of `generative.FlowMatching` overriding ``FLOW`` (a
    ``"training"`` entry overrides fields of `training`). Sampling integrates the learned
    velocity field with `solver` and `steps` of those arguments (midpoint, 30 steps by default).
    """

    name = "flow_matching"
    FLOW: ClassVar[dict[str, Any]] = {
        "hidden_features": 512,
        "n_blocks": 4,
        "solver": "midpoint",
        "steps": 30,
    }

    def __init__(
        self,
        *,
        representation: Literal["layers", "voxels"] = "layers",
        flow: dict[str, Any] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.representation = representation
        self.flow = flow

    def _fit_models(
        self, data: ShowerData, seeds: np.ndarray
    ) -> tuple[ShowerPipeline, dict[str, DensityModel]]:
        incident = data.energies.astype(np.float64)
        if self.representation == "layers":
            pre, x = self._joint_features(data, seeds[0])
        elif self.representation == "voxels":
            pre = ShowerPipeline([*self._base_steps(seeds[0]), LogitAlpha(self.alpha)])
            x = pre.fit_forward(data.showers, incident)
        else:
            raise ValueError(
                f"representation must be 'layers' or 'voxels', got {self.representation!r}"
            )
        model = self._network(FlowMatching, self.FLOW, self.flow, seeds[1], "flow")
        return pre, {"flow": model.fit(x, np.log10(incident)[:, None])}

    def _sample_batch(self, incident: np.ndarray, seed: int) -> np.ndarray:
        z = self.models_["flow"].sample(
            np.log10(incident)[:, None], random_state=seed, batch_size=len(incident)
        )
        if self.representation == "voxels":
            return self.preprocessing_.inverse(z, incident)
        return self._joint_showers(z, incident)
