"""Hit signatures: which voxels of a shower pass the readout threshold, drawn from its neighbours.

The sparsity of a layer (the share of its voxels above the readout threshold) and, in layers of a
few voxels, its radial centre and width are decided by which voxels are hit. A flow of continuous
shapes smears the edge between a hit voxel and an empty one, and those features were the largest
separation powers left by `caloflow_inn` (54 minutes on all 60k photon showers: sparsity of the
5-voxel layers 3 and 12 0.013 and 0.008, their radial centres 0.008 and 0.007). `HitSignatures`
makes the hit structure a discrete draw, as `generative.calo.energies` does for empty layers: a
shower's signature is, per layer, the pattern of its hit voxels (an integer code) when the layer
has at most `max_pattern_voxels` voxels, else the number of hit voxels. A generated shower takes
the signature of one of its `k` nearest training showers in (log10 E_inc, log10 E_layer / E_inc),
among those with the same empty layers; the shape flow is conditioned on it. A small layer keeps
the voxels of its pattern, less any that fall below the threshold when the layer is rescaled to
its energy; a large layer keeps its voxels above the threshold, its count only informing the flow.
Forcing the count too (keeping the hottest voxels) gave a worse shower: on one trained model,
gradient-boosting AUC of the challenge's high-level inputs 0.755 against 0.713, with the widths
of the 190-voxel layer 2 the largest separation powers either way.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.neighbors import KDTree

from generative.preprocessing import Transform
from generative.validation import check_is_fitted

__all__ = ["HitSignatures"]


class HitSignatures(Transform):
    """Per-layer hit patterns (small layers) or hit counts (large layers), sampled by neighbours.

    `layer_sizes` are the voxels per layer, `cut` the readout threshold (MeV; a voxel at or above
    it is hit), `k` the neighbours a generated shower draws its signature from, uniformly,
    `max_pattern_voxels` the largest layer whose pattern is kept (2^size codes). Fitted:
    `coords_` (the training showers' log10 E_inc and log10 E_layer / E_inc, empty layers at 0,
    divided by their spread `scale_`), `empty_` (the code of their empty layers) and
    `signatures_` (N, L).
    """

    _state: ClassVar[tuple[str, ...]] = ("scale_", "coords_", "empty_", "signatures_")

    def __init__(
        self,
        layer_sizes: list[int],
        cut: float,
        k: int = 10,
        max_pattern_voxels: int = 8,
    ) -> None:
        self.layer_sizes = layer_sizes
        self.cut = cut
        self.k = k
        self.max_pattern_voxels = max_pattern_voxels

    def get_params(self) -> dict[str, Any]:
        return {
            "layer_sizes": list(self.layer_sizes),
            "cut": self.cut,
            "k": self.k,
            "max_pattern_voxels": self.max_pattern_voxels,
        }

    # -- geometry of the signature -------------------------------------------------------------
    def _starts(self) -> np.ndarray:
        return np.cumsum([0, *self.layer_sizes[:-1]])

    def _patterned(self) -> np.ndarray:
        return np.asarray(self.layer_sizes) <= self.max_pattern_voxels

    def _check(self, showers: np.ndarray) -> np.ndarray:
        x = np.asarray(showers, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != sum(self.layer_sizes):
            raise ValueError(f"showers must have shape (N, {sum(self.layer_sizes)}), got {x.shape}")
        if not (np.isfinite(self.cut) and self.cut > 0):
            raise ValueError(f"cut must be a positive energy in MeV, got {self.cut}")
        if int(self.k) < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        return x

    def signatures(self, showers: np.ndarray) -> np.ndarray:
        """Each shower's signature (N, L): hit pattern codes of small layers, hit counts else."""
        hit = self._check(showers) >= self.cut
        out = np.empty((len(hit), len(self.layer_sizes)), dtype=np.int64)
        for i, (start, size) in enumerate(zip(self._starts(), self.layer_sizes, strict=True)):
            block = hit[:, start : start + size]
            out[:, i] = block @ (1 << np.arange(size)) if self._patterned()[i] else block.sum(1)
        return out

    def context(self, signatures: np.ndarray) -> np.ndarray:
        """Features for a flow: the bits of every pattern, the hit share of the other layers."""
        sig = np.asarray(signatures, dtype=np.int64)
        cols = []
        for i, size in enumerate(self.layer_sizes):
            if self._patterned()[i]:
                cols.append((sig[:, i : i + 1] >> np.arange(size)) & 1)
            else:
                cols.append(sig[:, i : i + 1] / size)
        return np.concatenate(cols, axis=1).astype(np.float64)

    def keep(self, signatures: np.ndarray, voxels: np.ndarray) -> np.ndarray:
        """Which voxels (MeV) a shower keeps: a small layer its pattern, a large one those hit.

        A layer left with no voxel keeps its hottest one (a non-empty layer can take an empty
        signature only when no training shower shares its empty layers).
        """
        sig = np.asarray(signatures, dtype=np.int64)
        x = np.asarray(voxels, dtype=np.float64)
        keep = np.zeros(x.shape, dtype=bool)
        rows = np.arange(len(x))
        for i, (start, size) in enumerate(zip(self._starts(), self.layer_sizes, strict=True)):
            block = x[:, start : start + size]
            if self._patterned()[i]:
                kept = (sig[:, i : i + 1] >> np.arange(size)) & 1 == 1
            else:
                kept = block >= self.cut
            kept[rows, block.argmax(axis=1)] |= ~kept.any(axis=1)
            keep[:, start : start + size] = kept
        return keep

    # -- neighbours ---------------------------------------------------------------------------
    @staticmethod
    def _raw_coords(incident: np.ndarray, layers: np.ndarray, empty: np.ndarray) -> np.ndarray:
        e = np.asarray(incident, dtype=np.float64).reshape(-1)
        with np.errstate(divide="ignore"):
            rel = np.log10(np.asarray(layers, dtype=np.float64) / e[:, None])
        # empty layers are matched exactly through the empty code, not by distance
        return np.column_stack([np.log10(e), np.where(empty, 0.0, rel)])

    @staticmethod
    def _empty_codes(empty: np.ndarray) -> np.ndarray:
        return np.asarray(empty, dtype=np.int64) @ (1 << np.arange(empty.shape[1]))

    def fit(self, showers: np.ndarray, incident: np.ndarray, empty: np.ndarray) -> HitSignatures:
        """Record the training showers' signatures, positions and empty layers ((N, L) bools)."""
        x = self._check(showers)
        e = np.asarray(incident, dtype=np.float64).reshape(-1)
        empty = np.asarray(empty, dtype=bool)
        if len(e) != len(x) or empty.shape != (len(x), len(self.layer_sizes)):
            raise ValueError(
                f"{len(x)} showers need {len(x)} incident energies and empty layers of shape "
                f"({len(x)}, {len(self.layer_sizes)}), got {len(e)} and {empty.shape}"
            )
        layers = np.add.reduceat(x, self._starts(), axis=1)
        raw = self._raw_coords(e, layers, empty)
        spread = raw.std(axis=0)
        self.scale_ = np.where(spread > 0, spread, 1.0)
        self.coords_ = raw / self.scale_
        self.empty_ = self._empty_codes(empty)
        self.signatures_ = self.signatures(x)
        self._trees = None
        return self

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> HitSignatures:
        step = super().from_dict(spec)
        step.empty_ = step.empty_.astype(np.int64)
        step.signatures_ = step.signatures_.astype(np.int64)
        step._trees = None
        return step

    def _groups(self) -> dict[int, tuple[np.ndarray, KDTree]]:
        # one tree per pattern of empty layers, built once (also after loading)
        if getattr(self, "_trees", None) is None:
            self._trees = {}
            for code in np.unique(self.empty_):
                members = np.flatnonzero(self.empty_ == code)
                self._trees[int(code)] = (members, KDTree(self.coords_[members]))
        return self._trees

    def sample(
        self, incident: np.ndarray, layers: np.ndarray, empty: np.ndarray, random_state: int
    ) -> np.ndarray:
        """Signatures (N, L) for showers of these incident energies and layer energies (MeV)."""
        check_is_fitted(self, self._state)
        empty = np.asarray(empty, dtype=bool)
        coords = self._raw_coords(incident, layers, empty) / self.scale_
        codes = self._empty_codes(empty)
        groups = self._groups()
        rng = np.random.default_rng(random_state)
        out = np.empty((len(coords), len(self.layer_sizes)), dtype=np.int64)
        for code in np.unique(codes):
            rows = np.flatnonzero(codes == code)
            # a pattern no training shower has: its nearest showers of any pattern
            members, tree = groups.get(int(code), (None, None))
            if tree is None:
                members = np.arange(len(self.coords_))
                tree = KDTree(self.coords_)
            k = min(int(self.k), len(members))
            _, idx = tree.query(coords[rows], k=k)
            pick = idx[np.arange(len(rows)), rng.integers(0, k, size=len(rows))]
            out[rows] = self.signatures_[members[pick]]
        return out
