"""CaloFlow (arXiv:2106.05285): a two-stage flow for showers, both stages MAFs.

Flow 1 learns the stick-breaking fractions of the layer energies given log10 E_inc; flow 2 the
normalised voxel shapes of every layer given log10 E_inc and the log10 layer energies.
Generated shapes are renormalised and scaled by the flow-1 layer energies, so every generated
layer carries exactly the energy flow 1 gave it. Sampling a MAF takes one network pass per
feature, so generation is slow (tens of ms per shower on a CPU); `generative.calo.coupling`
samples in one pass.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from generative.base import DensityModel
from generative.calo.base import ShowerModel, check_incident_energies
from generative.calo.io import ShowerData
from generative.calo.preprocessing import RelativeToIncident, ShowerPipeline
from generative.flows import MAF
from generative.validation import check_is_fitted

__all__ = ["CaloFlow"]


class CaloFlow(ShowerModel):
    """Two-stage flow in the CaloFlow manner (arXiv:2106.05285), both stages MAFs.

    Flow 1: stick-breaking fractions of the layer energies (logit) given log10 E_inc. Flow 2: the
    per-layer normalised voxel shapes (logit) given log10 E_inc and log10 of the layer energies
    relative to E_inc. `energy_flow` and `shape_flow` are keyword arguments of
    `generative.flows.MAF` that override the defaults (``ENERGY_FLOW``, ``SHAPE_FLOW``); a
    ``"training"`` entry in either overrides fields of `training` for that flow only. Sampling a
    MAF takes one network pass per feature, so flow 2 dominates the generation time.
    """

    name = "caloflow"
    ENERGY_FLOW: ClassVar[dict[str, Any]] = {
        "transform": "spline",
        "n_transforms": 6,
        "hidden_features": 64,
        "n_bins": 8,
    }
    SHAPE_FLOW: ClassVar[dict[str, Any]] = {
        "transform": "affine",
        "n_transforms": 4,
        "hidden_features": 256,
    }
    #: the network class of each flow (a subclass may swap flow 2 for a one-pass coupling flow)
    NETWORKS: ClassVar[dict[str, type[MAF]]] = {"energy": MAF, "shape": MAF}

    def __init__(
        self,
        *,
        energy_flow: dict[str, Any] | None = None,
        shape_flow: dict[str, Any] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.energy_flow = energy_flow
        self.shape_flow = shape_flow

    def _fit_models(
        self, data: ShowerData, seeds: np.ndarray
    ) -> tuple[ShowerPipeline, dict[str, DensityModel]]:
        pre, energies, shapes = self._decompose(data, seeds[0])
        incident = data.energies.astype(np.float64)
        log_e = np.log10(energies)
        self.log_energy_floor_ = log_e.min(axis=0)
        models = self._fit_both(
            seeds,
            (self._energy_features(energies), np.log10(incident)[:, None]),
            (self._shape_features(shapes), self._shape_context(incident, log_e)),
        )
        return pre, models

    def _fit_both(
        self,
        seeds: np.ndarray,
        energy: tuple[np.ndarray, np.ndarray],
        shape: tuple[np.ndarray, np.ndarray],
    ) -> dict[str, DensityModel]:
        """Flow 1 on the (features, context) `energy`, flow 2 on `shape`, each with its seed."""
        return {
            "energy": self._fit_flow(
                "energy", self.ENERGY_FLOW, self.energy_flow, *energy, seeds[1]
            ),
            "shape": self._fit_flow("shape", self.SHAPE_FLOW, self.shape_flow, *shape, seeds[2]),
        }

    def _fit_flow(
        self,
        key: str,
        defaults: dict[str, Any],
        override: dict[str, Any] | None,
        x: np.ndarray,
        context: np.ndarray,
        seed: int,
    ) -> MAF:
        return self._network(self.NETWORKS[key], defaults, override, seed, key).fit(x, context)

    def _shape_context(self, incident: np.ndarray, log_e: np.ndarray) -> np.ndarray:
        # generated layer energies below anything seen in training would be extrapolation
        log_e = np.maximum(log_e, self.log_energy_floor_)
        return np.concatenate([np.log10(incident)[:, None], log_e], axis=1)

    def _layer_energies_relative(self, incident: np.ndarray, seed: int) -> np.ndarray:
        u = self.models_["energy"].sample(
            np.log10(incident)[:, None], random_state=seed, batch_size=len(incident)
        )
        return self._energies_from_features(u)

    def _sample_batch(self, incident: np.ndarray, seed: int) -> np.ndarray:
        seed_energy, seed_shape = np.random.SeedSequence(seed).generate_state(2)
        energies = self._layer_energies_relative(incident, int(seed_energy))
        context = self._shape_context(incident, np.log10(np.maximum(energies, 1e-300)))
        free = self.models_["shape"].sample(
            context, random_state=int(seed_shape), batch_size=len(incident)
        )
        return self._compose(energies, free, incident)

    def sample_layer_energies(
        self,
        incident_energies: Any,
        *,
        batch_size: int = 10_000,
        random_state: int | None = None,
    ) -> np.ndarray:
        """Flow 1 alone: layer energies (MeV, (N, n_layers)) as `sample` draws them.

        With the same `random_state` and `batch_size`, these are the layer energies of the
        showers `sample` returns (up to voxels zeroed below `noise`).
        """
        check_is_fitted(self, self._fitted)
        energies = check_incident_energies(incident_energies)
        seed = self._next_seed() if random_state is None else int(random_state)
        starts = range(0, len(energies), batch_size)
        seeds = np.random.SeedSequence(seed).generate_state(max(len(starts), 1))
        relative = next(s for s in self.preprocessing_.steps if isinstance(s, RelativeToIncident))
        out = np.empty((len(energies), len(self.geometry_.active_layers)))
        for i, start in enumerate(starts):
            batch = energies[start : start + batch_size]
            seed_energy = np.random.SeedSequence(int(seeds[i])).generate_state(2)[0]
            rel = self._layer_energies_relative(batch, int(seed_energy))
            out[start : start + batch_size] = relative.inverse(rel, batch)
        return out

    def _extra_state(self) -> dict[str, Any]:
        return {"log_energy_floor": self.log_energy_floor_.tolist()}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        self.log_energy_floor_ = np.asarray(state["log_energy_floor"], dtype=np.float64)
