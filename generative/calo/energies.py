"""Layer energies as continuous, per-energy standardised features for a flow (CaloFlow's flow 1).

Layer energies of real showers are a mixture: a layer is empty in a sizeable share of showers
(layer 0 of dataset 1 in about half of them at every incident energy), else it holds at least
one voxel above the readout threshold. `LayerEnergyCode` makes that mixture continuous and
exactly decodable: an empty layer gets an energy drawn uniformly below the threshold (`floor`),
so "empty" becomes "below the floor". Which layers are empty is a discrete pattern whose
frequencies `fit` counts per incident energy (`sample_empty` draws it, interpolating between
energies); the flow learns the energies given that pattern, so the share of empty layers, a
large signal for the challenge's high-level classifier (it sees log10 of every layer energy),
is reproduced exactly instead of being a far-away blob the flow has to place (a 15-epoch fit of
flow 1 alone: gradient-boosting AUC of the layer energies 0.52 with the pattern, 0.64 without).
The energies become log(E_tot / E_inc) and the logit stick-breaking shares e_i / sum_{j>=i}
e_j. Their location and spread change by an order of magnitude between 256 MeV and 4 TeV
(E_tot / E_inc has a spread of 30% at 256 MeV, 1% at 4 TeV), so each feature is standardised
with a mean and standard deviation that follow log10 E_inc (fitted per incident energy,
linearly interpolated between them): the flow learns only the residual shapes and
correlations, which vary slowly with E_inc, instead of widths that span a factor 30.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import expit, logit

from generative.calo.preprocessing import ShowerStep
from generative.validation import check_is_fitted

__all__ = ["LayerEnergyCode"]

#: fewer distinct incident energies than this are fitted one by one, more in quantile bins
_MAX_GRID = 64


def _log_incident(incident: np.ndarray, n: int) -> np.ndarray:
    e = np.asarray(incident, dtype=np.float64).reshape(-1)
    if e.shape[0] != n:
        raise ValueError(f"{e.shape[0]} incident energies for {n} showers")
    return np.log10(e)


def _grid_groups(log_e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grid points in log10 E_inc and each event's group: the distinct energies, or quantiles."""
    values, groups = np.unique(log_e, return_inverse=True)
    if len(values) <= _MAX_GRID:
        return values, groups
    edges = np.quantile(log_e, np.linspace(0.0, 1.0, _MAX_GRID // 4 + 1))
    groups = np.clip(np.searchsorted(edges, log_e, side="right") - 1, 0, len(edges) - 2)
    centres = np.array([np.median(log_e[groups == g]) for g in range(len(edges) - 1)])
    return centres, groups


class LayerEnergyCode(ShowerStep):
    """Layer energies (MeV, (N, L)) <-> features (N, L) standardised per incident energy.

    `floor` (MeV, one value or one per layer) lies below every non-empty layer's energy: layers
    below it are empty and get an energy uniform in (0, `floor`) from a generator seeded by
    `random_state` (so `forward` is a deterministic function of its input); `inverse` returns
    layers below it as exact zeros. `alpha` keeps the logit of the shares finite. Fitted:
    `grid_` (log10 E_inc), `loc_` and `scale_` (grid x L) of the unstandardised features and
    `patterns_` (grid x 2^L), the frequency of every pattern of empty layers.
    """

    _state: ClassVar[tuple[str, ...]] = ("grid_", "loc_", "scale_", "patterns_")

    def __init__(
        self, floor: float | list[float] = 1.0, alpha: float = 1e-7, random_state: int = 0
    ) -> None:
        self.floor = floor
        self.alpha = alpha
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {"floor": self.floor, "alpha": self.alpha, "random_state": self.random_state}

    def _floors(self, n_layers: int) -> np.ndarray:
        floor = np.broadcast_to(np.asarray(self.floor, dtype=np.float64), (n_layers,))
        if not np.all(np.isfinite(floor) & (floor > 0)):
            raise ValueError(f"floor must be positive energies in MeV, got {self.floor}")
        return floor

    def empty(self, energies: np.ndarray) -> np.ndarray:
        """Which layers are empty (below their floor), (N, L) booleans."""
        e = np.asarray(energies, dtype=np.float64)
        return e < self._floors(e.shape[1])

    def sample_empty(self, incident: np.ndarray, random_state: int) -> np.ndarray:
        """Patterns of empty layers, (N, L) booleans, drawn with the fitted frequencies."""
        check_is_fitted(self, self._state)
        log_e = _log_incident(incident, len(incident))
        freq = np.column_stack([np.interp(log_e, self.grid_, col) for col in self.patterns_.T])
        cumulative = np.cumsum(freq, axis=1)
        u = np.random.default_rng(random_state).random(len(log_e)) * cumulative[:, -1]
        codes = np.minimum((cumulative <= u[:, None]).sum(axis=1), freq.shape[1] - 1)
        return (codes[:, None] >> np.arange(self.loc_.shape[1])) & 1 == 1

    def dequantize(self, energies: np.ndarray) -> np.ndarray:
        """Layer energies with every empty layer (below `floor`) drawn uniformly below it."""
        e = np.array(energies, dtype=np.float64)
        floor = np.broadcast_to(self._floors(e.shape[1]), e.shape)
        empty = e < floor
        rng = np.random.default_rng(self.random_state)
        # 1 - U[0, 1) lies in (0, 1]: no layer is exactly 0, so every logarithm is finite
        e[empty] = floor[empty] * (1.0 - rng.random(int(empty.sum())))
        return e

    def _raw(self, energies: np.ndarray, incident: np.ndarray) -> np.ndarray:
        """log(E_tot / E_inc) and the logit stick-breaking shares of dequantized energies."""
        remaining = np.cumsum(energies[:, ::-1], axis=1)[:, ::-1]
        shares = energies[:, :-1] / remaining[:, :-1]
        ratio = np.log(remaining[:, 0]) - np.log(incident)
        return np.column_stack([ratio, logit(self.alpha + (1.0 - 2.0 * self.alpha) * shares)])

    def _loc_scale(self, log_e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        def interp(table: np.ndarray) -> np.ndarray:
            return np.column_stack([np.interp(log_e, self.grid_, col) for col in table.T])

        return interp(self.loc_), interp(self.scale_)

    def fit(self, x: np.ndarray, incident: np.ndarray) -> LayerEnergyCode:
        raw = self._raw(self.dequantize(x), 10.0 ** _log_incident(incident, len(x)))
        grid, groups = _grid_groups(_log_incident(incident, len(x)))
        loc = np.array([raw[groups == g].mean(axis=0) for g in range(len(grid))])
        scale = np.array([raw[groups == g].std(axis=0) for g in range(len(grid))])
        # a constant feature at one energy (e.g. a single shower there) is only shifted
        self.grid_, self.loc_, self.scale_ = grid, loc, np.where(scale > 0, scale, 1.0)
        codes = self.empty(x) @ (1 << np.arange(x.shape[1]))
        counts = np.zeros((len(grid), 2 ** x.shape[1]))
        np.add.at(counts, (groups, codes), 1.0)
        self.patterns_ = counts / counts.sum(axis=1, keepdims=True)
        return self

    def forward(self, x: np.ndarray, incident: np.ndarray) -> np.ndarray:
        check_is_fitted(self, self._state)
        log_e = _log_incident(incident, len(x))
        loc, scale = self._loc_scale(log_e)
        return (self._raw(self.dequantize(x), 10.0**log_e) - loc) / scale

    def decode(self, z: np.ndarray, incident: np.ndarray) -> np.ndarray:
        """Layer energies (MeV) of features `z`, empty layers still below the floor."""
        check_is_fitted(self, self._state)
        log_e = _log_incident(incident, len(z))
        loc, scale = self._loc_scale(log_e)
        raw = np.asarray(z, dtype=np.float64) * scale + loc
        remaining = np.exp(raw[:, 0]) * 10.0**log_e
        shares = np.clip((expit(raw[:, 1:]) - self.alpha) / (1.0 - 2.0 * self.alpha), 0.0, 1.0)
        out = np.empty_like(raw)
        for i in range(shares.shape[1]):
            out[:, i] = shares[:, i] * remaining
            remaining = remaining - out[:, i]
        out[:, -1] = remaining
        return out

    def inverse(self, z: np.ndarray, incident: np.ndarray) -> np.ndarray:
        decoded = self.decode(z, incident)
        return np.where(decoded < self._floors(decoded.shape[1]), 0.0, decoded)
