"""Hostile inputs met while a search runs: empty or duplicated data, changed inputs, fixes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from typer.testing import CliRunner

from analysis.cli import app
from analysis.data import make_toy
from tests.analysis.search_configs import FAST_HGB, lhco_files, lhco_search, tiny, toy_lhco

runner = CliRunner()


def test_zero_row_background_with_injection_is_refused(tmp_path):
    # The signal-only search of the issue: no background at all, 1000 injected events.
    empty = toy_lhco(10).iloc[:0]
    make_toy(0, 2_000, random_state=1).to_hdf(tmp_path / "signal.h5", key="df")
    argv = lhco_files(
        tmp_path,
        {"empty.h5": empty},
        signal_path=str(tmp_path / "signal.h5"),
        injection={"n_signal": 1_000},
    )
    result = runner.invoke(app, ["-q", *argv])
    assert result.exit_code == 1
    assert "the background (events without signal label) is too small" in result.output
    assert "signal region has 0 (need 10)" in result.output


def _run(tmp_path: Path, raw: dict) -> tuple[int, str]:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = runner.invoke(app, ["-q", "run", str(path)])
    return result.exit_code, result.output


def test_resume_refuses_an_input_file_changed_in_place(tmp_path):
    bg = tmp_path / "bg.h5"
    toy_lhco(40_000).to_hdf(bg, key="df")
    raw = lhco_search(tmp_path, [bg])
    code, output = _run(tmp_path, raw)
    assert code == 0, output
    first = json.loads((tmp_path / "run" / "results.json").read_text())
    # Shuffle the file in place: same path, same events, other order (other folds, other numbers).
    table = pd.read_hdf(bg, key="df")
    table.sample(frac=1.0, random_state=1).to_hdf(bg, key="df", mode="w")
    code, output = _run(tmp_path, raw)
    assert code == 1
    assert "holds results of other input data" in output
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == first


def test_failed_run_does_not_block_its_corrected_config(tmp_path):
    raw = tiny(tmp_path, stats={"efficiencies": [1.0, 0.1], "n_pseudo": 0})
    raw["data"] = {**raw["data"], "features": ["mj1", "foo"]}
    code, output = _run(tmp_path, raw)
    assert code == 1, output
    assert "foo" in output
    assert (tmp_path / "run" / "manifest.json").exists()
    raw["data"]["features"] = ["mj1", "delta_mj"]
    code, output = _run(tmp_path, raw)
    assert code == 0, output


def test_duplicates_are_refused_before_any_fit(tmp_path):
    # The fake discovery of the issue: one background file listed twice, nothing injected.
    toy_lhco(6_000).to_hdf(tmp_path / "bg.h5", key="df")
    raw = lhco_search(tmp_path, [tmp_path / "bg.h5", tmp_path / "bg.h5"])
    code, output = _run(tmp_path, raw)
    assert code == 1
    assert "6000 events are duplicates" in output
    assert not (tmp_path / "run" / "units").exists()


def test_method_options_pass_when_they_fit():
    from analysis.config import load_config

    config = load_config({"methods": [{"name": "cwola", "options": FAST_HGB}]})
    assert config.methods[0].options["n_folds"] == 3


def test_dropping_duplicates_keeps_the_first_of_each_group(tmp_path):
    from analysis.data import read_lhco
    from analysis.data.duplicates import read_files

    toy = toy_lhco(3_000)
    toy.to_hdf(tmp_path / "a.h5", key="df")
    copy = pd.concat([toy.iloc[:200].astype(np.float32).astype(np.float64), toy_lhco(100, 5)])
    copy.to_hdf(tmp_path / "b.h5", key="df")
    paths = [tmp_path / "a.h5", tmp_path / "b.h5"]
    kept = read_files(paths, read_lhco, "drop")
    assert len(kept) == 3_100
    pd.testing.assert_frame_equal(kept.iloc[:3_000], toy.reset_index(drop=True))
    assert read_files([tmp_path / "a.h5"], read_lhco, "refuse").shape == toy.shape
