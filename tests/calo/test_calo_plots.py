"""Plots render to non-trivial image files."""

import numpy as np
import pandas as pd
import pytest

from generative.calo.amplification import amplification_study
from generative.calo.geometry import load_dataset_geometry, parse_binning_xml
from generative.calo.plots import (
    plot_amplification,
    plot_average_showers,
    plot_feature_comparison,
    plot_separation_powers,
    save_figure,
    write_feature_plots,
)

GEOMETRY = parse_binning_xml(
    '<Bins><Bin name="photon"><Layer id="0" r_edges="0,1,3" n_bin_alpha="1"/>'
    '<Layer id="1" r_edges="0,2,5" n_bin_alpha="4"/></Bin></Bins>'
)


def _is_png(path, min_bytes=5000):
    return (
        path.is_file() and path.stat().st_size > min_bytes and path.read_bytes()[:4] == b"\x89PNG"
    )


def test_feature_comparison_renders(tmp_path):
    rng = np.random.default_rng(0)
    fig = plot_feature_comparison(
        rng.exponential(100, 2000), rng.exponential(110, 1500), "E_layer_2"
    )
    path = save_figure(fig, tmp_path / "e.png")
    assert _is_png(path)
    assert "S = " in fig.axes[0].get_legend().get_texts()[1].get_text()
    assert [p.name for p in tmp_path.iterdir()] == ["e.png"]  # no temporary files left


def test_write_feature_plots(tmp_path):
    rng = np.random.default_rng(1)
    ref = pd.DataFrame(
        {"E_tot_over_E_inc": rng.normal(1, 0.05, 500), "sparsity_layer_0": rng.random(500)}
    )
    gen = ref + 0.01
    written = write_feature_plots(ref, gen, tmp_path / "plots")
    assert set(written) == {"E_tot_over_E_inc", "sparsity_layer_0"}
    assert all(_is_png(p) for p in written.values())
    with pytest.raises(KeyError, match="sparsity_layer_0"):
        write_feature_plots(ref, gen[["E_tot_over_E_inc"]], tmp_path)


@pytest.mark.parametrize("geometry", [GEOMETRY, load_dataset_geometry("1-photons")])
def test_average_showers_render(tmp_path, geometry):
    rng = np.random.default_rng(2)
    showers = rng.exponential(5.0, (50, geometry.n_voxels))
    fig = plot_average_showers(geometry, {"reference": showers, "generated": 0.9 * showers})
    assert len(fig.axes) == 2 * len(geometry.layer_ids) + 1  # panels and the colour bar
    assert _is_png(save_figure(fig, tmp_path / "avg.png"))
    with pytest.raises(ValueError, match="must have shape"):
        plot_average_showers(geometry, {"bad": showers[:, :-1]})


def test_summary_plots_render(tmp_path):
    rng = np.random.default_rng(3)
    sep = pd.Series({"E_layer_0": 1e-3, "EC_eta_layer_1": 0.2}, name="separation_power")
    assert _is_png(save_figure(plot_separation_powers(sep), tmp_path / "sep.png"))
    result = amplification_study(
        rng.normal(size=4000), rng.normal(size=300), rng.normal(size=40_000)
    )
    assert _is_png(save_figure(plot_amplification(result), tmp_path / "amp.png"))


def test_empty_input_is_rejected():
    with pytest.raises(ValueError, match="0 reference"):
        plot_feature_comparison(np.array([]), np.ones(3), "E_tot")
    with pytest.raises(ValueError, match="no samples"):
        plot_average_showers(GEOMETRY, {})
    with pytest.raises(ValueError, match="no separation powers"):
        plot_separation_powers(pd.Series(dtype=float))
