"""Voxel geometry of the CaloChallenge 2022 data sets, read from the challenge's binning XML.

A calorimeter is a stack of layers along the particle direction; each layer is split into radial
rings (edges in mm) and equal angular sectors over [-pi, pi). Showers are flattened layer by layer,
then angular bin, then radial bin (radial fastest), exactly as in the challenge's `XMLHandler`.
Layers with ``r_edges="0"`` have no voxels. Voxel centres are the ring mid-radius at the sector's
mid-angle, x = r cos(alpha) ("eta") and y = r sin(alpha) ("phi").
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "DATASETS",
    "CaloGeometry",
    "CaloLayer",
    "load_binning",
    "load_dataset_geometry",
    "parse_binning_xml",
]

#: the challenge's data sets -> (binning file shipped in generative/calo/binning, particle name)
DATASETS: dict[str, tuple[str, str]] = {
    "1-photons": ("binning_dataset_1_photons.xml", "photon"),
    "1-pions": ("binning_dataset_1_pions.xml", "pion"),
    "2": ("binning_dataset_2.xml", "electron"),
    "3": ("binning_dataset_3.xml", "electron"),
}


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class CaloLayer:
    """One calorimeter layer: its id, radial bin edges (mm) and number of angular bins."""

    layer_id: int
    r_edges: tuple[float, ...]
    n_alpha: int

    @property
    def n_r(self) -> int:
        """Number of radial bins (0 for an unused layer)."""
        return len(self.r_edges) - 1

    @property
    def n_voxels(self) -> int:
        """Number of voxels of the layer."""
        return self.n_r * self.n_alpha

    @property
    def r_centres(self) -> np.ndarray:
        """Mid-radius of every ring (mm)."""
        edges = np.asarray(self.r_edges, dtype=np.float64)
        return 0.5 * (edges[1:] + edges[:-1])

    @property
    def alpha_centres(self) -> np.ndarray:
        """Mid-angle of every sector, sectors of equal width over [-pi, pi)."""
        edges = np.linspace(-np.pi, np.pi, self.n_alpha + 1)
        return 0.5 * (edges[1:] + edges[:-1])


@dataclass(frozen=True)
class CaloGeometry:
    """The voxel layout of one data set: layers in file order and the voxel index maps."""

    particle: str
    layers: tuple[CaloLayer, ...]

    def __post_init__(self) -> None:
        ids = [layer.layer_id for layer in self.layers]
        if len(set(ids)) != len(ids):
            raise ValueError(f"geometry {self.particle!r} has duplicate layer ids: {ids}")
        if self.n_voxels == 0:
            raise ValueError(f"geometry {self.particle!r} has no voxels (every layer is empty)")

    @property
    def n_voxels(self) -> int:
        """Total number of voxels of a flattened shower."""
        return sum(layer.n_voxels for layer in self.layers)

    @property
    def active_layers(self) -> tuple[CaloLayer, ...]:
        """Layers that have voxels, in flattening order."""
        return tuple(layer for layer in self.layers if layer.n_voxels > 0)

    @property
    def layer_ids(self) -> tuple[int, ...]:
        """Ids of the layers that have voxels."""
        return tuple(layer.layer_id for layer in self.active_layers)

    @property
    def alpha_binned_layer_ids(self) -> tuple[int, ...]:
        """Ids of the layers with more than one angular bin (where centres of energy are taken)."""
        return tuple(layer.layer_id for layer in self.active_layers if layer.n_alpha > 1)

    def layer(self, layer_id: int) -> CaloLayer:
        """The layer with id `layer_id`."""
        for layer in self.layers:
            if layer.layer_id == layer_id:
                return layer
        raise KeyError(f"geometry {self.particle!r} has no layer {layer_id}; ids: {self.layer_ids}")

    @cached_property
    def layer_slices(self) -> dict[int, slice]:
        """Slice of the flattened shower that holds each non-empty layer, keyed by layer id."""
        slices, start = {}, 0
        for layer in self.active_layers:
            slices[layer.layer_id] = slice(start, start + layer.n_voxels)
            start += layer.n_voxels
        return slices

    def _per_voxel(self, per_layer) -> np.ndarray:
        return _readonly(np.concatenate([per_layer(layer) for layer in self.active_layers]))

    @cached_property
    def voxel_layer(self) -> np.ndarray:
        """Layer id of every voxel."""
        return self._per_voxel(lambda layer: np.full(layer.n_voxels, layer.layer_id))

    @cached_property
    def voxel_alpha_bin(self) -> np.ndarray:
        """Angular bin index (within its layer) of every voxel."""
        return self._per_voxel(lambda layer: np.repeat(np.arange(layer.n_alpha), layer.n_r))

    @cached_property
    def voxel_r_bin(self) -> np.ndarray:
        """Radial bin index (within its layer) of every voxel."""
        return self._per_voxel(lambda layer: np.tile(np.arange(layer.n_r), layer.n_alpha))

    @cached_property
    def voxel_r(self) -> np.ndarray:
        """Mid-radius (mm) of every voxel."""
        return self._per_voxel(lambda layer: np.tile(layer.r_centres, layer.n_alpha))

    @cached_property
    def voxel_alpha(self) -> np.ndarray:
        """Mid-angle (rad) of every voxel."""
        return self._per_voxel(lambda layer: np.repeat(layer.alpha_centres, layer.n_r))

    @cached_property
    def voxel_x(self) -> np.ndarray:
        """x = r cos(alpha) of every voxel centre (mm), the challenge's "eta" coordinate."""
        return _readonly(self.voxel_r * np.cos(self.voxel_alpha))

    @cached_property
    def voxel_y(self) -> np.ndarray:
        """y = r sin(alpha) of every voxel centre (mm), the challenge's "phi" coordinate."""
        return _readonly(self.voxel_r * np.sin(self.voxel_alpha))

    def layer_image(self, values: np.ndarray, layer_id: int) -> np.ndarray:
        """Reshape the layer's part of flattened shower(s) to (..., n_alpha, n_r)."""
        values = np.asarray(values)
        if values.shape[-1] != self.n_voxels:
            raise ValueError(
                f"expected {self.n_voxels} voxels in the last axis, got shape {values.shape}"
            )
        layer = self.layer(layer_id)
        part = values[..., self.layer_slices[layer_id]]
        return part.reshape(*values.shape[:-1], layer.n_alpha, layer.n_r)


def _parse_layer(elem: ET.Element, particle: str) -> CaloLayer:
    attrs = elem.attrib
    missing = [k for k in ("id", "r_edges", "n_bin_alpha") if k not in attrs]
    if missing:
        raise ValueError(f"{particle!r}: <Layer {attrs}> lacks attribute(s) {missing}")
    where = f"{particle!r} layer {attrs['id']}"
    try:
        layer_id = int(attrs["id"])
        n_alpha = int(attrs["n_bin_alpha"])
        edges = tuple(float(s) for s in attrs["r_edges"].split(","))
    except ValueError as err:
        raise ValueError(f"{where}: cannot read its attributes ({err})") from None
    if n_alpha < 1:
        raise ValueError(f"{where}: n_bin_alpha must be at least 1, got {n_alpha}")
    if not all(np.isfinite(edges)) or edges[0] < 0 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"{where}: r_edges must be finite, >= 0 and increasing, got {edges}")
    return CaloLayer(layer_id=layer_id, r_edges=edges, n_alpha=n_alpha)


def parse_binning_xml(text: str, particle: str | None = None) -> CaloGeometry:
    """Build the geometry from the text of a challenge binning XML (``<Bins><Bin name=...>``).

    `particle` picks the ``<Bin>`` by its name attribute; it may be omitted when there is one.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise ValueError(f"binning XML is not well-formed: {err}") from None
    bins = [root] if root.tag == "Bin" else root.findall("Bin")
    if not bins:
        raise ValueError(f"binning XML has no <Bin> element (root is <{root.tag}>)")
    names = [b.attrib.get("name", "") for b in bins]
    if particle is None:
        if len(bins) > 1:
            raise ValueError(f"binning XML has several particles {names}: pass particle=")
        chosen = bins[0]
    else:
        matches = [b for b, name in zip(bins, names, strict=True) if name == particle]
        if not matches:
            raise KeyError(f"particle {particle!r} not in the binning XML; it has {names}")
        chosen = matches[0]
    name = chosen.attrib.get("name", "")
    layers = tuple(_parse_layer(elem, name) for elem in chosen.findall("Layer"))
    if not layers:
        raise ValueError(f"binning XML particle {name!r} has no <Layer> elements")
    return CaloGeometry(particle=name, layers=layers)


def load_binning(path: str | Path, particle: str | None = None) -> CaloGeometry:
    """Read a binning XML file (e.g. the challenge's ``binning_dataset_1_photons.xml``)."""
    return parse_binning_xml(Path(path).read_text(encoding="utf-8"), particle)


def load_dataset_geometry(dataset: str) -> CaloGeometry:
    """Geometry of a challenge data set: '1-photons', '1-pions', '2' or '3' (shipped XML)."""
    try:
        filename, particle = DATASETS[dataset]
    except KeyError:
        raise KeyError(f"unknown data set {dataset!r}; choose from {sorted(DATASETS)}") from None
    text = resources.files("generative.calo").joinpath("binning", filename).read_text("utf-8")
    return parse_binning_xml(text, particle)
