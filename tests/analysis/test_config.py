"""The search configuration: defaults, validation messages, the example file, fingerprints."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from analysis.config import (
    ConfigError,
    MethodConfig,
    SearchConfig,
    example_yaml,
    load_config,
    method_names,
)

#: fingerprints of the default config before data.mass_shift existed (commit d7a8a62)
BASE_FINGERPRINTS = {"run": "215b25a90de6c6d7", "compare": "935651255de916be"}


def test_default_config_is_valid_and_complete():
    config = load_config()
    assert config.data.source == "toy"
    assert [m.name for m in config.methods] == ["cathode", "cwola"]
    assert config.stats.efficiencies == [1.0, 0.1, 0.01, 0.002]


def test_example_yaml_round_trips_to_the_defaults(tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(example_yaml())
    assert load_config(path) == SearchConfig()
    assert "# selection efficiencies" in example_yaml()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"statz": {}}, r"statz: unknown key"),
        (
            {"stats": {"efficiencies": [0.1, 1.5]}},
            r"stats.efficiencies: efficiencies must lie in \(0, 1\], got \[1.5\]",
        ),
        ({"stats": {"n_params": 7}}, r"stats.n_params: must be one of 3, 4 or 5"),
        ({"stats": {"bin_width": "wide"}}, r"stats.bin_width: .*valid number"),
        ({"methods": [{"name": "magic"}]}, r"methods.0.name: must be one of 'cathode', 'anode'"),
        ({"windows": {"low": 2.0}}, r"windows \[2.0, 4.1\] TeV lie outside data.mjj_range"),
        ({"windows": {"low": 4.0, "high": 3.5}}, r"windows.low \(4.0\) must be below"),
        ({"data": {"source": "lhco"}}, r"data.paths must name at least one file"),
        ({"data": {"mass_shift": -0.1}}, r"data.mass_shift: .*greater than or equal to 0"),
        ({"data": {"mass_shift": float("nan")}}, r"data.mass_shift: .*finite number"),
        ({"data": {"mass_shift": "0.1"}}, r"data.mass_shift: .*valid number"),
        (
            {"data": {"source": "table", "paths": ["f.h5"], "mass_shift": 0.1}},
            r"data.mass_shift shifts the jet masses of toy or lhco events",
        ),
        (
            {"executor": {"kind": "slurm"}},
            r"executor.kind: must be one of 'inprocess', 'processes' or 'dask'",
        ),
    ],
)
def test_bad_config_names_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        load_config(raw)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(path)


def test_fingerprint_tracks_results_not_outputs():
    base = load_config()
    assert (
        load_config({"output": "elsewhere", "executor": {"kind": "dask"}}).fingerprint()
        == base.fingerprint()
    )
    assert load_config({"seed": 1}).fingerprint() != base.fingerprint()
    assert load_config({"stats": {"n_params": 3}}).fingerprint() != base.fingerprint()


def test_mass_shift_validates_and_changes_the_fingerprint_only_when_on(tmp_path):
    path = tmp_path / "shifted.yaml"
    path.write_text("data: {mass_shift: 0.1}\n")
    base = load_config()
    assert load_config(path).data.mass_shift == 0.1
    assert "  mass_shift: 0.0" in example_yaml()
    for purpose in ("run", "compare"):
        assert load_config(path).fingerprint(purpose) != base.fingerprint(purpose)
        # Off, the hash is that of a config without the key: earlier results still resume.
        off = load_config({"data": {"mass_shift": 0}}).fingerprint(purpose)
        assert off == base.fingerprint(purpose) == BASE_FINGERPRINTS[purpose]


def test_search_and_comparison_fingerprints_ignore_each_others_settings():
    base = load_config()
    other_compare = load_config({"compare": {"seeds": [0, 1]}})
    other_windows = load_config({"windows": {"step": 0.4}})
    assert other_compare.fingerprint("run") == base.fingerprint("run")
    assert other_compare.fingerprint("compare") != base.fingerprint("compare")
    assert other_windows.fingerprint("compare") == base.fingerprint("compare")
    assert other_windows.fingerprint("run") != base.fingerprint("run")


def test_default_methods_pass_their_own_checks():
    from analysis.options import check_method_options

    config = load_config()
    for method in [*config.methods, *config.compare.methods]:
        assert method.name in method_names()
        check_method_options(method.name, method.options)
        assert MethodConfig.model_validate(method.model_dump()) == method


def test_method_names_are_the_detector_registry():
    from anomaly import DETECTORS

    assert method_names() == list(DETECTORS)


def test_importing_the_config_or_building_defaults_loads_no_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from analysis.config import load_config\n"
        "load_config()\n"
        "print(sorted(m for m in ('torch', 'nflows', 'pandas') if m in sys.modules))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo
    )
    assert done.stdout.strip() == "[]"
