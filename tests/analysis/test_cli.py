"""The command line: configs, a whole search, a comparison, exit codes and messages."""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from typer.testing import CliRunner

from analysis.cli import app
from analysis.config import load_config
from analysis.progress import UnitProgress
from tests.analysis.search_configs import FAST_HGB, tiny

runner = CliRunner()


def write_config(path, raw: dict) -> str:
    """Write a YAML config and return its path as a string."""
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_example_config_is_written_valid_and_checked(tmp_path):
    target = tmp_path / "example.yaml"
    result = runner.invoke(app, ["config", "--example", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert load_config(target) == load_config(None)
    checked = runner.invoke(app, ["config", "--check", str(target)])
    assert checked.exit_code == 0
    assert "valid" in checked.output


def test_bad_config_exits_2_naming_the_key(tmp_path):
    path = write_config(tmp_path / "bad.yaml", {"windows": {"low": 4.0, "high": 3.0}})
    result = runner.invoke(app, ["run", path])
    assert result.exit_code == 2
    assert "windows" in result.output
    typo = write_config(tmp_path / "typo.yaml", {"stats": {"n_pseudos": 10}})
    result = runner.invoke(app, ["config", "--check", typo])
    assert result.exit_code == 2
    assert "n_pseudos" in result.output


def test_run_prints_the_largest_excess_and_writes_the_report(tmp_path):
    raw = tiny(tmp_path, stats={"efficiencies": [1.0, 0.1], "n_pseudo": 0})
    path = write_config(tmp_path / "search.yaml", raw)
    output = tmp_path / "elsewhere"
    result = runner.invoke(app, ["-q", "run", path, "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "cwola: largest excess in SR 3.3-3.7 TeV" in result.output
    saved = json.loads((output / "results.json").read_text())
    assert saved["methods"]["cwola"]["best"]["local_significance"] is not None
    assert (output / "report.md").is_file()


def test_failing_search_exits_1_with_the_reason(tmp_path):
    raw = tiny(
        tmp_path,
        data={"n_background": 2_000, "injection": {"n_signal": 0}},
        windows={"low": 5.2, "high": 5.6, "width": 0.4, "sideband_width": 0.2},
    )
    result = runner.invoke(app, ["-q", "run", write_config(tmp_path / "s.yaml", raw)])
    assert result.exit_code == 1
    assert "error: cwola on window SR 5.2-5.6 TeV" in result.output


def test_compare_prints_a_row_per_method(tmp_path):
    raw = tiny(tmp_path, "cmp")
    raw["compare"] = {
        "methods": [{"name": "idealized", "options": FAST_HGB}],
        "injections": [600],
        "n_test_background": 2_000,
        "n_test_signal": 400,
        "min_background": 20,
    }
    result = runner.invoke(app, ["-q", "compare", write_config(tmp_path / "c.yaml", raw)])
    assert result.exit_code == 0, result.output
    assert "injection    600  idealized" in result.output
    assert (tmp_path / "cmp" / "compare" / "compare.md").is_file()


def test_calorimeter_commands_are_mounted():
    result = runner.invoke(app, ["calo", "--help"])
    assert result.exit_code == 0
    for command in ("train", "generate", "evaluate"):
        assert command in result.output


@pytest.mark.parametrize(
    ("flags", "ours", "root"),
    [
        ([], logging.WARNING, logging.WARNING),
        (["-v"], logging.INFO, logging.WARNING),
        (["-vv"], logging.DEBUG, logging.DEBUG),
        (["-q"], logging.ERROR, logging.ERROR),
    ],
)
def test_verbosity_flags_set_the_log_levels(tmp_path, flags, ours, root):
    path = write_config(tmp_path / "c.yaml", {"seed": 1})
    result = runner.invoke(app, [*flags, "config", "--check", path])
    assert result.exit_code == 0, result.output
    assert logging.getLogger("analysis.workflow").getEffectiveLevel() == ours
    assert logging.getLogger().level == root


def test_unit_progress_logs_elapsed_and_time_left(caplog, monkeypatch):
    clock = iter([0.0, 10.0, 30.0])
    monkeypatch.setattr("analysis.progress.time.perf_counter", lambda: next(clock))
    with caplog.at_level(logging.INFO, "analysis.progress"), UnitProgress(4, "fits") as bar:
        bar.update()
        bar.update()
    assert caplog.messages == [
        "fits: 1 of 4 finished, 10 s elapsed, about 30 s left",
        "fits: 2 of 4 finished, 30 s elapsed, about 30 s left",
    ]


def test_example_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "mine.yaml"
    target.write_text("seed: 4\n")
    refused = runner.invoke(app, ["config", "--example", "-o", str(target)])
    assert refused.exit_code == 2
    assert target.read_text() == "seed: 4\n"
    forced = runner.invoke(app, ["config", "--example", "-o", str(target), "--force"])
    assert forced.exit_code == 0
    assert load_config(target) == load_config(None)
