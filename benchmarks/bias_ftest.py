"""Benchmark: bias tests (0, 2, 5 sigma injected) and F-test order choice in every window.

The scan_lee setup (20 windows, dijet background, scores independent of mjj) at the 10% and
1% selections: per window, the F-test's choice among 3/4/5 dijet parameters and the mean and
width of the signal-yield pulls over 1000 pseudo-data sets per injection (CASE tolerances:
mean 0 +- 0.1, width 1 +- 0.1). Writes benchmarks/results/bias_ftest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from analysis.stats.bias import bias_test
from benchmarks.scan_lee import SEARCH_CONFIG, synthetic_search
from generative.fileio import write_atomic

RESULTS = Path(__file__).resolve().parent / "results" / "bias_ftest.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--n-toys", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    load_start = os.getloadavg()
    start, cpu_start = time.perf_counter(), time.process_time()
    config = SEARCH_CONFIG
    spectra, windows = synthetic_search(args.events, 0, args.seed)
    seeds = np.random.SeedSequence(args.seed).spawn(2 * len(windows))
    results = [
        bias_test(spectra, w, eff, config, args.n_toys, random_state=np.random.default_rng(s))
        for (w, eff), s in zip(
            ((w, eff) for eff in (0.1, 0.01) for w in range(len(windows))), seeds, strict=True
        )
    ]
    rows = [r.to_dict() for r in results]
    payload = {
        "benchmark": "bias_ftest",
        "setup": {
            "events": args.events,
            "windows": len(windows),
            "efficiencies_tested": [0.1, 0.01],
            "fit_n_params": config.n_params,
            "resolution": config.resolution,
            "n_toys": args.n_toys,
            "load_average_start": load_start,
            "load_average_end": os.getloadavg(),
        },
        "wall_seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "windows_passed": sum(r.passed for r in results),
        "windows_tested": len(results),
        "ftest_choices": {str(n): sum(r.ftest_n_params == n for r in results) for n in (3, 4, 5)},
        "worst_mean_pull": max(abs(i["mean_pull"]) for r in rows for i in r["injections"]),
        "worst_width_deviation": max(abs(i["width"] - 1) for r in rows for i in r["injections"]),
        "results": rows,
    }
    write_atomic(args.output, json.dumps(payload, indent=1))
    print(json.dumps({k: v for k, v in payload.items() if k not in ("results", "setup")}))


if __name__ == "__main__":
    main()
