"""The hostile-input catalogue through the real console, and how fast the command line answers.

Runs `python -m analysis.cli` in fresh processes: `--help` and `config --check` (the example
config, and one without density models) several times each, then every case of the catalogue in
tests/analysis/test_hostile_inputs.py, recording its exit code, its stderr lines, whether it
matched the expected one-line message, and its wall time. Writes
benchmarks/results/hostile_inputs.json with the load average and CPU seconds beside wall times.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.store import write_json
from tests.analysis.test_hostile_inputs import CASES

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "hostile_inputs.json"
REPEATS = 5


def _cli(args: list[str], cwd: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "analysis.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"exit_code": done.returncode, "stderr": done.stderr, "wall": wall, "cpu": cpu}


def _latency(args: list[str], cwd: Path) -> dict:
    runs = [_cli(args, cwd) for _ in range(REPEATS)]
    walls, cpus = [r["wall"] for r in runs], [r["cpu"] for r in runs]
    return {
        "command": " ".join(args),
        "exit_codes": sorted({r["exit_code"] for r in runs}),
        "median_wall_seconds": float(np.median(walls)),
        "min_wall_seconds": float(np.min(walls)),
        "median_cpu_seconds": float(np.median(cpus)),
    }


def main() -> None:
    """Measure and write the JSON."""
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        example = folder / "example.yaml"
        _cli(["config", "--example", "-o", str(example)], folder)
        plain = folder / "plain.yaml"
        plain.write_text("methods: [{name: cwola, options: {n_folds: 3}}]\n")
        latency = [
            _latency(["--help"], folder),
            _latency(["config", "--check", str(plain)], folder),
            _latency(["config", "--check", str(example)], folder),
        ]
        cases = []
        for case in CASES:
            where = folder / re.sub(r"\W+", "_", case.name)
            where.mkdir()
            argv = case.write(where)
            run = _cli(["-q", *argv], where)
            lines = [line for line in run["stderr"].splitlines() if line.strip()]
            cases.append(
                {
                    "case": case.name,
                    "exit_code": run["exit_code"],
                    "expected_exit_code": case.exit_code,
                    "lines": lines,
                    "one_line": len(lines) == 1,
                    "matched": len(lines) == 1 and bool(re.search(case.message, lines[0])),
                    "traceback": "Traceback" in run["stderr"],
                    "wall_seconds": run["wall"],
                }
            )
    passed = sum(
        c["matched"] and c["exit_code"] == c["expected_exit_code"] and not c["traceback"]
        for c in cases
    )
    payload = {
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
        "latency": latency,
        "cases_passed": passed,
        "cases": cases,
    }
    write_json(RESULTS, payload)
    for row in latency:
        print(
            f"{row['command']:<40} median {row['median_wall_seconds']:.2f} s wall, "
            f"{row['median_cpu_seconds']:.2f} s CPU"
        )
    print(f"catalogue: {passed} of {len(cases)} cases refused as expected -> {RESULTS}")


if __name__ == "__main__":
    main()
