"""The catalogue of hostile inputs: each is refused with one line naming the problem, no traceback.

Exit 2 for a bad command line or configuration (nothing is read or run), exit 1 for a failure
while running (bad data files, a results folder that does not fit). Each case writes its inputs,
runs the command line and checks the exit code, that the message is a single line and what it
says. Cases that need a finished unit (a changed input on resume) run a tiny search first.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from analysis.cli import app
from analysis.data import build_features, make_toy
from tests.analysis.search_configs import (
    lhco_files,
    lhco_search,
    tiny,
    toy_lhco,
    write_config,
)

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Case:
    """One hostile input: how to write it, the exit code and the message expected."""

    name: str
    write: Callable[[Path], list[str]]
    exit_code: int
    message: str


def _yaml(path: Path, text: str) -> list[str]:
    path.write_text(textwrap.dedent(text))
    return ["run", str(path)]


def _yaml_case(name: str, text: str, message: str) -> Case:
    """A configuration file with this text, refused with exit 2."""
    return Case(name, lambda t: _yaml(t / "c.yaml", text), 2, message)


def _method(tmp_path: Path, name: str, options: dict) -> list[str]:
    return write_config(tmp_path, {"methods": [{"name": name, "options": options}]})


def _truncated(tmp_path: Path) -> bytes:
    path = tmp_path / "whole.h5"
    toy_lhco(20_000).to_hdf(path, key="df")
    data = path.read_bytes()
    return data[: len(data) // 2]


def _pickled_column(tmp_path: Path) -> list[str]:
    table = toy_lhco().astype({"tau1j1": object})
    path = tmp_path / "objects.h5"
    with pytest.warns(pd.errors.PerformanceWarning):
        table.to_hdf(path, key="df", format="fixed")
    return write_config(tmp_path, lhco_search(tmp_path, [path]))


def _outside_range(tmp_path: Path) -> list[str]:
    toy = toy_lhco(20_000)
    low = toy[build_features(toy, ["mj1"])["mjj"].to_numpy() < 2.7]
    signal = make_toy(0, 2_000, random_state=1)
    signal.to_hdf(tmp_path / "signal.h5", key="df")
    return lhco_files(
        tmp_path,
        {"low.h5": low},
        signal_path=str(tmp_path / "signal.h5"),
        injection={"n_signal": 1_000},
    )


def _table(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "features.csv"
    path.write_text(text)
    raw = tiny(tmp_path, stats={"efficiencies": [1.0, 0.1], "n_pseudo": 0})
    raw["data"] = {"source": "table", "paths": [str(path)], "features": ["mj1"]}
    return write_config(tmp_path, raw)


def _example_over(tmp_path: Path) -> list[str]:
    (tmp_path / "mine.yaml").write_text("seed: 4\n")
    return ["config", "--example", "-o", str(tmp_path / "mine.yaml")]


def _broken_manifest(tmp_path: Path) -> list[str]:
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text('{"fingerprint": "abc"')
    return write_config(tmp_path, tiny(tmp_path))


CASES = [
    # --- configuration files (exit 2) ---
    Case(
        "missing config", lambda t: ["run", str(t / "nope.yaml")], 2, r"nope\.yaml does not exist"
    ),
    _yaml_case(
        "unclosed brace", "data: {source: toy\n", r"c\.yaml: line \d+ column \d+: not valid YAML"
    ),
    _yaml_case(
        "tab indentation",
        "data:\n\tsource: toy\n",
        r"c\.yaml: line 2 column 1: not valid YAML: found character '\\t'",
    ),
    Case(
        "binary file",
        lambda t: (
            (t / "c.yaml").write_bytes(b"\x89HDF\r\n\x1a\n\x00\xff\xfe")
            and ["run", str(t / "c.yaml")]
        ),
        2,
        r"c\.yaml: not a text \(UTF-8\) file",
    ),
    _yaml_case(
        "duplicate key",
        "seed: 1\nstats: {n_pseudo: 5}\nseed: 2\n",
        r"c\.yaml: line 3 column 1: not valid YAML: key 'seed' given twice \(lines 1 and 3\)",
    ),
    _yaml_case(
        "python object tag",
        'seed: !!python/object/apply:os.system ["touch owned"]\n',
        r"c\.yaml: line 1 column 7: not valid YAML: could not determine a constructor",
    ),
    _yaml_case(
        "not a mapping",
        "- 1\n- 2\n",
        r"c\.yaml: a configuration must be a mapping of keys, got list",
    ),
    Case(
        "unknown key",
        lambda t: write_config(t, {"stats": {"n_pseudos": 10}}),
        2,
        r"search\.yaml: stats\.n_pseudos: unknown key",
    ),
    Case(
        "boolean as integer",
        lambda t: write_config(t, {"stats": {"n_pseudo": True}}),
        2,
        r"stats\.n_pseudo: Input should be a valid integer \(got True\)",
    ),
    Case(
        "float as integer",
        lambda t: write_config(t, {"seed": 1.5}),
        2,
        r"seed: Input should be a valid integer \(got 1\.5\)",
    ),
    _yaml_case(
        "infinite resolution",
        "stats: {resolution: .inf}\n",
        r"stats\.resolution: Input should be a finite number",
    ),
    Case(
        "bin wider than the range",
        lambda t: write_config(t, {"stats": {"bin_width": 5.0}}),
        2,
        r"stats\.bin_width 5\.0 TeV gives 0 bins over data\.mjj_range \[2\.8, 6\.0\] TeV",
    ),
    Case(
        "unknown method",
        lambda t: write_config(t, {"methods": [{"name": "magic"}]}),
        2,
        r"methods\.0\.name: must be one of 'cathode', 'anode'",
    ),
    Case(
        "misspelt option",
        lambda t: _method(t, "cwola", {"n_foldz": 3}),
        2,
        r"methods\.0: options\.n_foldz is not an option of cwola; it takes .*n_folds",
    ),
    Case(
        "misspelt classifier option",
        lambda t: _method(t, "cwola", {"classifier_params": {"n_modelz": 3}}),
        2,
        r"options\.classifier_params\.n_modelz is not an option of classifier 'hgb'",
    ),
    Case(
        "misspelt density option",
        lambda t: _method(t, "cathode", {"density_params": {"n_transformz": 3}}),
        2,
        r"options\.density_params\.n_transformz is not an option of density model 'maf'",
    ),
    Case(
        "misspelt training option",
        lambda t: _method(t, "cathode", {"density_params": {"training": {"epochz": 3}}}),
        2,
        r"options\.density_params\.training\.epochz is not an option of the training settings",
    ),
    Case(
        "seed as an option",
        lambda t: _method(t, "cwola", {"random_state": 3}),
        2,
        r"options\.random_state is set by the search's seed",
    ),
    Case(
        "example over a directory",
        lambda t: ["config", "--example", "-o", str(t)],
        2,
        r"--output .* is a directory; name the file to write",
    ),
    Case(
        "example over a file",
        _example_over,
        2,
        r"mine\.yaml exists; pass --force to overwrite it",
    ),
    Case(
        "check names a missing data file",
        lambda t: ["config", "--check", write_config(t, lhco_search(t, [t / "gone.h5"]))[1]],
        2,
        r"search\.yaml: data\.paths\.0: .*gone\.h5 does not exist",
    ),
    # --- data files (exit 1) ---
    Case(
        "CSV renamed .h5",
        lambda t: lhco_files(t, {"events.h5": b"pxj1,pyj1\n1.0,2.0\n"}),
        1,
        r"^error: .*events\.h5 is not a readable HDF5 file",
    ),
    Case(
        "0-byte HDF5",
        lambda t: lhco_files(t, {"events.h5": b""}),
        1,
        r"^error: .*events\.h5 is empty \(0 bytes\), not an HDF5 file",
    ),
    Case(
        "truncated HDF5",
        lambda t: lhco_files(t, {"events.h5": _truncated(t)}),
        1,
        r"^error: .*events\.h5 is (damaged|not a readable HDF5 file)",
    ),
    Case(
        "pickled column",
        _pickled_column,
        1,
        r"^error: .*objects\.h5 'df': column\(s\) \['tau1j1'\] are stored as object",
    ),
    Case(
        "string column",
        lambda t: lhco_files(t, {"events.h5": toy_lhco().astype({"mj2": str})}),
        1,
        r"^error: .*events\.h5 'df': column\(s\) \['mj2'\] are stored as object",
    ),
    Case(
        "non-numeric CSV column",
        lambda t: _table(t, "mjj,mj1\n3.5,0.1\n3.6,heavy\n"),
        1,
        r"^error: .*features\.csv: features table has non-numeric column\(s\): 'mj1'",
    ),
    Case(
        "empty CSV",
        lambda t: _table(t, ""),
        1,
        r"^error: .*features\.csv is not a readable CSV table",
    ),
    Case(
        "same file listed twice",
        lambda t: (
            write_config(t, lhco_search(t, [t / "bg.h5", t / "bg.h5"]))
            if toy_lhco(6_000).to_hdf(t / "bg.h5", key="df") is None
            else None
        ),
        1,
        r"^error: data\.paths: 6000 events are duplicates .*6000 because .*bg\.h5 is listed twice",
    ),
    Case(
        "float32 copy in a second file",
        lambda t: lhco_files(
            t,
            {
                "a.h5": toy_lhco(6_000),
                "b.h5": toy_lhco(6_000).iloc[:500].astype(np.float32).astype(np.float64),
            },
        ),
        1,
        r"^error: data\.paths: 500 events are duplicates .*500 of .*b\.h5 repeat events of .*a\.h5",
    ),
    Case(
        "rows repeated within a file",
        lambda t: lhco_files(t, {"a.h5": pd.concat([toy_lhco(6_000), toy_lhco(6_000).iloc[:40]])}),
        1,
        r"^error: data\.paths: 40 events are duplicates .*40 within .*a\.h5",
    ),
    Case(
        "background entirely outside the mjj range",
        _outside_range,
        1,
        r"^error: the background \(events without signal label\) is too small: window SR",
    ),
    # --- results folder (exit 1) ---
    Case(
        "broken manifest",
        _broken_manifest,
        1,
        r"^error: .*manifest\.json is damaged .*remove .* to start afresh",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_refused_in_one_line(tmp_path, case):
    argv = case.write(tmp_path)
    result = runner.invoke(app, ["-q", *argv])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == case.exit_code, result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1, result.output
    assert re.search(case.message, lines[0]), lines[0]
