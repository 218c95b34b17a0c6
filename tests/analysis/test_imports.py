"""What importing costs: plain statistics and the command line's help load no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: modules that must stay unloaded: torch and nflows (seconds to import), and for --help also
#: the packages whose import would pull them in or is not needed to print the usage
TORCH = ("torch", "nflows")


def loaded_after(
    code: str, watched: tuple[str, ...]
) -> tuple[list[str], subprocess.CompletedProcess]:
    """Run `code` in a fresh interpreter; the watched modules it left in sys.modules."""
    probe = (
        f"{code}\n"
        "import sys\n"
        f"print('LOADED', sorted(m for m in {watched!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("LOADED"))
    return json.loads(line.removeprefix("LOADED ")), done.stdout


def test_statistics_import_no_torch():
    loaded, _ = loaded_after("import analysis.stats", TORCH)
    assert loaded == []


def test_help_of_the_command_line_imports_no_torch():
    run_as_main = (
        "import runpy, sys\n"
        "sys.argv = ['resonance-search', '--help']\n"
        "try:\n"
        "    runpy.run_module('analysis.cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass"
    )
    loaded, stdout = loaded_after(
        run_as_main, (*TORCH, "generative", "anomaly", "pandas", "matplotlib")
    )
    assert "Usage" in stdout
    assert loaded == []


def test_config_check_of_methods_with_options_imports_no_torch(tmp_path):
    config = tmp_path / "search.yaml"
    config.write_text(
        "methods:\n"
        "  - name: cathode\n"
        "    options: {classifier_params: {n_models: 3}, density_params: {training: {epochs: 2}}}\n"
        "  - name: cwola\n"
        "    options: {classifier: mlp, classifier_params: {n_models: 2}}\n"
    )
    check = (
        "import runpy, sys\n"
        f"sys.argv = ['resonance-search', 'config', '--check', {str(config)!r}]\n"
        "try:\n"
        "    runpy.run_module('analysis.cli', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code"
    )
    loaded, stdout = loaded_after(check, (*TORCH, "sklearn", "anomaly.base"))
    assert "valid" in stdout
    assert loaded == []
