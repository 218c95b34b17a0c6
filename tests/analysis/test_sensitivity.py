"""Sensitivity studies: the whole search at several injections; where it reaches 3 and 5 sigma."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from analysis.cli import app
from analysis.config import SearchConfig
from analysis.sensitivity import (
    SensitivityPoint,
    first_reach,
    markdown,
    point_config,
    seed_reaches,
    summarise,
)
from tests.analysis.search_configs import tiny


def point(
    injection: int, z: float | None, *, limit=False, seed=0, window="w", local: float | None = None
):
    """A method's best cell with global significance `z` (a lower limit when `limit`)."""
    if local is None and z is not None:
        local = z + 1.0
    return SensitivityPoint(
        method="cathode",
        injection=injection,
        seed=seed,
        window=window,
        efficiency=None if window is None else 0.1,
        local_significance=local,
        global_significance=z,
        global_p_value=None,
        global_is_limit=limit,
        signal_in_sr=None,
    )


@pytest.mark.parametrize(
    ("z", "limit", "expected"),
    [
        (3.2, False, True),
        (2.9, False, False),
        (3.1, True, True),  # the limit already clears the threshold
        (2.5, True, None),  # the true value lies above 2.5: it may or may not reach 3
    ],
)
def test_a_seed_reaches_a_threshold_only_when_its_global_significance_shows_it(z, limit, expected):
    assert seed_reaches(point(1000, z, limit=limit), 3.0) is expected


def test_a_lower_limit_with_a_local_significance_below_the_threshold_misses_it():
    # the global significance is at most the local one
    assert seed_reaches(point(0, 0.6, limit=True, local=1.5), 3.0) is False
    assert seed_reaches(point(0, None, local=1.5), 3.0) is False


def test_a_search_without_a_valid_cell_misses_and_one_without_look_elsewhere_is_undecided():
    assert seed_reaches(point(1000, None, window=None), 3.0) is False
    assert seed_reaches(point(1000, None), 3.0) is None


def test_first_reach_is_the_smallest_injection_most_seeds_reach():
    points = [
        *(point(0, z, seed=s) for s, z in enumerate([0.1, -0.5, 0.8])),
        *(point(500, z, seed=s) for s, z in enumerate([3.5, 1.0, 2.0])),  # one of three
        *(point(1000, z, seed=s) for s, z in enumerate([3.5, 3.1, 2.0])),  # two of three
        *(point(2000, z, seed=s) for s, z in enumerate([6.0, 5.5, 4.0])),
    ]
    three, five = first_reach(points, 3.0), first_reach(points, 5.0)
    assert (three.injection, three.undecided_below) == (1000, ())
    assert (five.injection, five.undecided_below) == (2000, ())


def test_lower_limits_below_the_threshold_are_reported_as_undecided_not_as_misses():
    points = [
        *(point(500, 2.5, limit=True, seed=s) for s in range(3)),
        *(point(1000, z, seed=s) for s, z in enumerate([3.5, 3.1, 2.0])),
    ]
    reach = first_reach(points, 3.0)
    assert reach.injection == 1000
    assert reach.undecided_below == (500,)
    assert first_reach(points[:3], 3.0).injection is None


def test_first_reach_refuses_points_of_several_methods():
    other = SensitivityPoint("cwola", 0, 0, None, None, None, None, None, False, None)
    with pytest.raises(ValueError, match="one method"):
        first_reach([point(0, 1.0), other], 3.0)


def test_each_point_is_the_config_with_its_injection_seed_and_own_folder(tmp_path):
    config = SearchConfig.model_validate(tiny(tmp_path))
    moved = point_config(config, 250, 7)
    assert moved.data.injection.n_signal == 250
    assert moved.seed == 7
    assert moved.output == tmp_path / "run" / "inj250" / "seed7"
    assert moved.methods == config.methods
    assert moved.fingerprint() != point_config(config, 250, 8).fingerprint()


def test_sensitivity_command_runs_the_search_per_injection_and_finds_the_injected_signal(
    tmp_path,
):
    raw = tiny(tmp_path, stats={"efficiencies": [1.0, 0.1], "n_pseudo": 20})
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(raw))
    output = tmp_path / "study"
    args = ["-q", "sensitivity", str(path), "-o", str(output), "-i", "0", "-i", "3000", "-s", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "cwola: global 3 sigma first at" in result.output
    saved = json.loads((output / "sensitivity.json").read_text())
    points = {p["injection"]: p for p in saved["points"]}
    assert set(points) == {0, 3000}
    assert (output / "inj3000" / "seed3" / "results.json").is_file()
    # truth from the labels: the best window at 3000 injected holds signal, at 0 none
    assert points[0]["signal_in_sr"] == 0
    assert points[3000]["signal_in_sr"] > 0
    # the best cell's selection by label: no signal without injection, and at 3000 it selects
    # signal in its SR; the fit's prediction is the one of that cell
    assert points[0]["signal_selected_in_sr"] == points[0]["signal_selected_in_sidebands"] == 0
    assert 0 < points[3000]["signal_selected_in_sr"] <= points[3000]["signal_in_sr"]
    results = json.loads((output / "inj3000" / "seed3" / "results.json").read_text())
    assert (
        points[3000]["fitted_background_sr"] == results["methods"]["cwola"]["best"]["background_sr"]
    )
    # the signal its selection passes in the sidebands raises that fit above the one of the
    # selected background alone
    assert points[3000]["signal_selected_in_sidebands"] > 0
    assert points[3000]["background_only_fit_sr"] < points[3000]["fitted_background_sr"]
    # the injected resonance is found more significantly than background fluctuations
    assert points[3000]["local_significance"] > points[0]["local_significance"] + 2
    assert seed_reaches(SensitivityPoint(**points[0]), 3.0) is not True
    assert len(saved["null_global_p_values"]["cwola"]) == 1
    # both labelled searches measure what the selections and fits do to the background alone
    bias = saved["background_alone_fit_over_truth"]["cwola"]
    assert (bias["n_searches"], bias["efficiencies"]) == (2, [1.0, 0.1])
    assert all(0.5 < r < 2.0 for r in bias["median"])
    table = (output / "sensitivity.md").read_text()
    # a row per injection, one of the reach, one of the truth at 3000, one of the fit bias
    assert table.count("| cwola |") == 5
    assert "Injections searched: 0, 3000." in table
    assert "| cwola | 2 | " in table  # the fit bias over both searches
    # the truth table lists the cells with signal only
    assert "| cwola | 3000 | 3 |" in table
    assert "| cwola | 0 | 3 |" not in table


def test_sensitivity_refuses_negative_injections(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(tiny(tmp_path)))
    result = CliRunner().invoke(app, ["sensitivity", str(path), "-i", "-5"])
    assert result.exit_code == 1
    assert "injected signal counts must be >= 0" in result.output


def test_a_record_written_before_the_truth_counts_loads_and_shows_no_truth_table():
    old = {**point(1000, 3.2).to_dict()}
    for key in ("fitted_background_sr", "signal_selected_in_sr", "background_selected_in_sr"):
        del old[key]
    del old["signal_selected_in_sidebands"], old["background_selected_in_sidebands"]
    del old["background_only_fit_sr"]
    loaded = SensitivityPoint(**old)
    assert loaded.signal_selected_in_sr is None
    assert "fitted SR background" not in markdown(summarise([loaded], Path(".")))
