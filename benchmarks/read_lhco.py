"""Benchmark of the LHCO R&D reader: rows per second and peak memory against the table's size.

Reads a 100k-row part of ../shared/data/lhco and a 1.1M-row file in the same layout (the size
of the real R&D file) assembled from all parts in a temporary directory, each fully, in chunks
and streamed. Every measurement runs in a fresh process so its peak RSS is its own.
Writes benchmarks/results/read_lhco.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from analysis.data.readers import DEFAULT_CHUNKSIZE, read_lhco
from generative.fileio import write_atomic

REPO = Path(__file__).resolve().parents[1]
LHCO = REPO.parent / "shared" / "data" / "lhco"
RESULTS = REPO / "benchmarks" / "results" / "read_lhco.json"
R_AND_D_ROWS = 1_100_000
CHUNKSIZE = 100_000
REPEATS = 3

# Run in a child process: import, warm the HDF5 code paths on a few rows, reset the kernel's
# peak-RSS mark (Linux: "5" > /proc/self/clear_refs) so import-time peaks do not hide the read's,
# then measure one read.
_CHILD = """
import json, sys, time
from analysis.data import iter_lhco, read_lhco

def status_kb(field):
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1])

path, mode, chunksize = sys.argv[1], sys.argv[2], int(sys.argv[3])
warm_up = iter_lhco(path, 10)
next(warm_up)
warm_up.close()
with open("/proc/self/clear_refs", "w") as clear_refs:
    clear_refs.write("5")
before = status_kb("VmRSS")
start = time.perf_counter()
if mode == "stream":
    rows = sum(len(chunk) for chunk in iter_lhco(path, chunksize))
    table_bytes = None
else:
    df = read_lhco(path, chunksize=chunksize if mode == "chunked" else None)
    rows, table_bytes = len(df), int(df.memory_usage(index=True).sum())
seconds = time.perf_counter() - start
print(json.dumps({"rows": rows, "seconds": seconds, "table_bytes": table_bytes,
                  "extra_peak_bytes": (status_kb("VmHWM") - before) * 1024}))
"""


def measure(path: Path, mode: str) -> dict:
    """Best time and largest peak of REPEATS fresh-process reads of ``path``."""
    runs = []
    for _ in range(REPEATS):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), mode, str(CHUNKSIZE)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout))
    rows = runs[0]["rows"]
    # The streamed read keeps no table; compare its peak with the size the table would have
    # (15 float64 columns and an int64 index per row).
    table_bytes = runs[0]["table_bytes"] or rows * 16 * 8
    seconds = min(r["seconds"] for r in runs)
    peak = max(r["extra_peak_bytes"] for r in runs)
    return {
        "file": path.name,
        "mode": mode,
        "chunksize": DEFAULT_CHUNKSIZE if mode == "full" else CHUNKSIZE,
        "rows": rows,
        "file_mb": round(path.stat().st_size / 2**20, 2),
        "table_mb": round(table_bytes / 2**20, 2),
        "seconds_best_of_3": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "peak_extra_mb": round(peak / 2**20, 1),
        "peak_over_table": round(peak / table_bytes, 2),
    }


def write_r_and_d_sized_file(directory: Path) -> Path:
    """All shared parts (and signal) concatenated to 1.1M rows, stored like the R&D file."""
    parts = sorted(LHCO.glob("qcd_part*.h5")) + sorted(LHCO.glob("signal_*.h5"))
    table = pd.concat([read_lhco(p) for p in parts], ignore_index=True)
    while len(table) < R_AND_D_ROWS:
        table = pd.concat([table, table.iloc[: R_AND_D_ROWS - len(table)]], ignore_index=True)
    path = directory / "events_rnd_layout_1.1M.h5"
    table.to_hdf(path, key="df", format="fixed", mode="w", complib="zlib", complevel=5)
    return path


def main() -> None:
    """Measure and write the results JSON."""
    if not (LHCO / "qcd_part01.h5").exists():
        sys.exit(f"benchmark data not found: {LHCO} (expected ../shared/data/lhco beside the repo)")
    if not Path("/proc/self/clear_refs").exists():
        sys.exit("this benchmark measures peak memory through Linux /proc; run it on Linux")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        big = write_r_and_d_sized_file(Path(tmp))
        for path in (LHCO / "qcd_part01.h5", big):
            for mode in ("full", "chunked", "stream"):
                result = measure(path, mode)
                print(json.dumps(result), flush=True)
                results.append(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "read_lhco",
        "description": (
            "analysis.data.read_lhco (full: default chunksize; chunked: explicit chunksize) and "
            "iter_lhco (stream) on LHCO R&D-layout files (fixed format, zlib); "
            "peak_extra_mb is the peak RSS during the read minus the RSS before it (after "
            "imports and a warm-up read of 10 rows, peak mark reset); peak_over_table divides "
            "it by the DataFrame's size (streamed: by the size the table would have)"
        ),
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    write_atomic(RESULTS, json.dumps(payload, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
