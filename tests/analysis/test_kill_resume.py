"""A real `python -m analysis.cli run` killed with SIGKILL resumes to the numbers of a fresh run.

The process is killed while a detector fits, while the look-elsewhere pseudo-experiments run and
while the plots are drawn; each kill is checked to have landed in that stage (by the files the
run had written at that moment), then the run is resumed in the same folder. Damaged unit
checkpoints left behind are redone too. Tiny search: three windows, one method, seconds a stage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from analysis.config import load_config
from analysis.workflow import run_search
from tests.analysis.search_configs import tiny

REPO = Path(__file__).resolve().parents[2]
N_WINDOWS = 3
#: slower than the unit tests' classifier, so that a kill can land inside a fit
SLOW_HGB = {
    "classifier": "hgb",
    "classifier_params": {"n_models": 4, "max_iter": 100},
    "n_folds": 3,
}


def search(tmp_path: Path, name: str) -> dict:
    """The killed search: three windows of CWoLa hunting, 1000 pseudo-experiments."""
    raw = tiny(tmp_path, name, stats={"efficiencies": [1.0, 0.1], "n_pseudo": 1000})
    raw["windows"] = {"low": 3.3, "high": 4.1, "width": 0.4, "step": 0.2, "sideband_width": 0.4}
    raw["methods"] = [{"name": "cwola", "options": SLOW_HGB}]
    return raw


def untimed(value):
    """Results without wall-clock or CPU timings, the only numbers a rerun may change."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if not k.endswith("seconds")}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory) -> tuple[dict, Path]:
    """results.json of the search run once without interruption, and its folder."""
    tmp_path = tmp_path_factory.mktemp("fresh")
    result = run_search(load_config(search(tmp_path, "fresh")))
    return result.results, result.output


@pytest.fixture
def fresh(fresh_run) -> dict:
    """results.json of the uninterrupted search."""
    return fresh_run[0]


def _units(out: Path) -> list[Path]:
    return sorted((out / "units" / "scores").rglob("*.npz")) if (out / "units").exists() else []


def _during_fits(out: Path, log: str) -> bool:
    return 1 <= len(_units(out)) < N_WINDOWS


def _during_lee(out: Path, log: str) -> bool:
    # The first batch of pseudo-experiments has finished (a progress line not of the 3 fits).
    started = re.search(rf"\b1 of (?!{N_WINDOWS}\b)\d+ finished", log) is not None
    return started and not (out / "units" / "lee").exists()


def _during_plots(out: Path, log: str) -> bool:
    plots = out / "plots"
    return plots.exists() and any(plots.glob("*.png")) and not (out / "results.json").exists()


def _kill_when(config: Path, out: Path, ready: Callable[[Path, str], bool], delay: float) -> None:
    """Start the command line, SIGKILL it `delay` s after `ready(out, its log)` first holds."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    log_path = config.with_suffix(".log")
    command = [sys.executable, "-m", "analysis.cli", "-v", "run", str(config)]
    with (
        log_path.open("w") as log,
        subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log) as process,
    ):
        try:
            deadline = time.monotonic() + 300
            while not ready(out, log_path.read_text()):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"never reached the stage: {log_path.read_text()}")
                time.sleep(0.01)
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    # The kill must have landed inside the stage, not after it.
    assert ready(out, log_path.read_text()), "the stage ended before the kill"
    assert process.returncode == -signal.SIGKILL
    assert not (out / "results.json").exists()
    # Progress on a non-terminal: each finished unit is logged with the time left.
    text = log_path.read_text()
    assert "1 of 3 finished" in text
    assert "elapsed, about" in text


@pytest.mark.parametrize(
    ("stage", "ready", "delay"),
    [("fitting", _during_fits, 0.3), ("lee", _during_lee, 0.0), ("plotting", _during_plots, 0.1)],
)
def test_sigkill_then_resume_gives_the_fresh_numbers(tmp_path, fresh, stage, ready, delay):
    raw = search(tmp_path, stage)
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(raw))
    out = Path(raw["output"])
    _kill_when(config, out, ready, delay)
    resumed = run_search(load_config(config)).results
    assert untimed(resumed["methods"]) == untimed(fresh["methods"])
    assert json.loads((out / "results.json").read_text())["fingerprint"] == fresh["fingerprint"]


def test_damaged_checkpoints_are_redone_to_the_fresh_numbers(tmp_path, fresh_run):
    fresh, folder = fresh_run
    raw = search(tmp_path, "damaged")
    out = Path(raw["output"])
    shutil.copytree(folder, out)
    (out / "results.json").unlink()
    units = _units(out)
    units[0].write_bytes(b"")
    units[1].write_bytes(units[1].read_bytes()[:100])
    lee = next((out / "units" / "lee").rglob("*.json"))
    lee.write_text(lee.read_text().replace("1", "2", 1))
    resumed = run_search(load_config(raw)).results
    assert untimed(resumed["methods"]) == untimed(fresh["methods"])
