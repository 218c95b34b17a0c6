"""Shared fixtures of the shower-model tests: a tiny geometry, tiny showers, fast model settings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from generative.calo.geometry import CaloGeometry, parse_binning_xml
from generative.calo.io import ShowerData
from generative.calo.models import ShowerModel, make_shower_model

#: three layers of 2x2, 1 and 3 voxels (8 in all), one of them a single voxel
TINY_XML = """<Bins><Bin name="photon">
<Layer id="0" r_edges="0,1,2" n_bin_alpha="2"/>
<Layer id="1" r_edges="0,5" n_bin_alpha="1"/>
<Layer id="2" r_edges="0,1,2,3" n_bin_alpha="1"/>
<Layer id="3" r_edges="0" n_bin_alpha="1"/>
</Bin></Bins>"""

FAST_TRAINING = {"epochs": 3, "batch_size": 128, "learning_rate": 3e-3}
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "caloflow": {
        "energy_flow": {"n_transforms": 2, "hidden_features": 16, "n_bins": 4},
        "shape_flow": {"n_transforms": 2, "hidden_features": 16},
    },
    "flow_matching": {"flow": {"hidden_features": 32, "n_blocks": 1, "steps": 4}},
    "calo_inn": {"flow": {"n_transforms": 4, "hidden_features": 32, "n_blocks": 1, "n_bins": 4}},
    "caloflow_inn": {
        "energy_flow": {"n_transforms": 2, "hidden_features": 16, "n_bins": 4},
        "shape_flow": {"n_transforms": 4, "hidden_features": 32, "n_blocks": 1, "n_bins": 4},
    },
}


def tiny_showers(n: int = 300, seed: int = 0) -> ShowerData:
    """Sparse showers whose total energy follows the incident energy (2^8 .. 2^12 MeV)."""
    rng = np.random.default_rng(seed)
    incident = 2.0 ** rng.integers(8, 13, n)
    n_voxels = parse_binning_xml(TINY_XML).n_voxels
    profile = np.linspace(2.0, 0.5, n_voxels)
    showers = rng.gamma(2.0, profile, (n, n_voxels)) * incident[:, None] / 40
    showers[rng.random(showers.shape) < 0.3] = 0.0
    return ShowerData(energies=incident, showers=showers)


def fast_shower_model(name: str, geometry: CaloGeometry, **overrides: Any) -> ShowerModel:
    """A registered shower model in its fast configuration, quiet and seeded."""
    params = {"geometry": geometry, "training": FAST_TRAINING, "random_state": 0, "verbose": False}
    params.update(FAST_PARAMS[name])
    params.update(overrides)
    return make_shower_model(name, **params)


@pytest.fixture(scope="session")
def tiny_geometry() -> CaloGeometry:
    """The tiny three-layer geometry (plus one empty layer)."""
    return parse_binning_xml(TINY_XML)


@pytest.fixture(scope="session")
def tiny_data() -> ShowerData:
    """300 tiny showers."""
    return tiny_showers()


@pytest.fixture(scope="session", params=sorted(FAST_PARAMS))
def fitted_model(request, tiny_geometry, tiny_data) -> ShowerModel:
    """Each registered shower model, fitted once per session on the tiny showers."""
    model = fast_shower_model(request.param, tiny_geometry)
    return model.fit(tiny_data.showers, tiny_data.energies)
