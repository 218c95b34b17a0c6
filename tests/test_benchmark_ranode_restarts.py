"""R-ANODE restarts on grid points: the grid's kept sideband fit spares the point its own."""

import pytest

import analysis.sideband_fits as sideband_fits
from analysis.compare import run_compare
from analysis.config import load_config
from analysis.sideband_fits import sideband_fit_key
from benchmarks.ranode_restarts import point_config, seed_with_kept_fit
from benchmarks.sic_vs_injection import density_set_config
from tests.analysis.search_configs import FAST_CATHODE, tiny

RANODE = {
    "density_params": FAST_CATHODE["density_params"],
    "n_folds": 3,
    "n_restarts": 1,
    "signal_training": {"epochs": 2},
}


@pytest.fixture
def grid(tmp_path):
    """A toy comparison grid of CATHODE and R-ANODE (one density group)."""
    raw = tiny(tmp_path, "grid")
    raw["compare"] = {
        "methods": [
            {"name": "cathode", "options": FAST_CATHODE},
            {"name": "ranode", "options": RANODE},
        ],
        "injections": [600],
        "seeds": [0],
        "sideband_width": 0.4,
        "n_test_background": 5_000,
        "n_test_signal": 1_000,
        "min_background": 20,
    }
    return load_config(raw)


def test_both_density_methods_name_their_groups_kept_fit_and_others_are_refused(grid):
    key = sideband_fit_key(grid, 600, 0, "ranode")
    assert key == sideband_fit_key(grid, 600, 0, "cathode")
    assert key.endswith("/sideband/cathode_model")
    with pytest.raises(ValueError, match="not a density method"):
        sideband_fit_key(grid, 600, 0, "cwola")


def test_a_point_with_the_grids_kept_fit_fits_none_and_reproduces_the_grid(
    grid, tmp_path, monkeypatch
):
    units = tmp_path / "grid_units"
    grid_set = density_set_config(grid, "ranode", 600, 0, units)
    ranode_in_grid = {r["method"]: r for r in run_compare(grid_set)["runs"]}["ranode"]
    point = point_config(grid, 600, 0, 2, tmp_path / "points")

    def never(unit):
        raise AssertionError("the point fitted its own sideband density")

    monkeypatch.setattr(sideband_fits, "fit_sideband_unit", never)
    assert seed_with_kept_fit(grid, point, 600, 0, units)
    single, restarted = run_compare(point)["runs"]
    for metric in ("auc", "max_sic", "signal_fractions"):
        assert single[metric] == ranode_in_grid[metric], metric
    assert len(restarted["restart_losses"][0]) == 2


def test_a_point_without_a_kept_fit_is_left_to_fit_its_own(grid, tmp_path):
    point = point_config(grid, 600, 0, 2, tmp_path / "points")
    assert not seed_with_kept_fit(grid, point, 600, 0, tmp_path / "no_grid")
