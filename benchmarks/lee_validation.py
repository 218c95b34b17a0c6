"""Benchmark: the global significance's extrapolation against brute-force pseudo-experiments.

Background-only synthetic search (the scan_lee setup: 20 windows x 4 efficiencies, scores
independent of mjj). 10,000 brute-force background-only pseudo-scans give the null
distribution of the maximum local Z; the Gross-Vitells upcrossing extrapolation from the
first 200 and 1000 of them, and the Bonferroni bound, are compared with it at local Z 2.5 to
4.0 (as far as 10,000 pseudo-experiments reach). Writes benchmarks/results/lee_validation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from scipy import stats

from analysis.stats import (
    extrapolate_global,
    look_elsewhere,
)
from benchmarks.scan_lee import SEARCH_CONFIG, pseudo_executor, search_setup, synthetic_search
from generative.fileio import write_atomic

RESULTS = Path(__file__).resolve().parent / "results" / "lee_validation.json"
LEVELS = (2.5, 3.0, 3.5, 4.0)


def compare(maxima: np.ndarray, maps: np.ndarray, n_cells: int, n_fit: int, seed: int) -> list:
    """Per level: brute-force P(max >= z) with its error, and the extrapolations from n_fit."""
    rows = []
    for z in LEVELS:
        k = int(np.sum(maxima >= z))
        p = k / maxima.size
        error = float(np.sqrt(max(k, 1))) / maxima.size
        gv = extrapolate_global(maps[:n_fit], z, n_cells, random_state=seed)
        rows.append(
            {
                "local_z": z,
                "brute_force_exceeding": k,
                "brute_force_p": p,
                "brute_force_p_error": error,
                "brute_force_global_z": float(stats.norm.isf(p)) if k else None,
                "extrapolated_from": n_fit,
                "gross_vitells_p": float(
                    stats.norm.sf(z) + (gv.n1 + gv.n2 * z) * np.exp(-0.5 * z * z)
                ),
                "bonferroni_p": gv.bonferroni_p_value,
                "reported_method": gv.method,
                "reported_p": gv.p_value,
                "reported_global_z": gv.significance,
                "reported_global_z_error": gv.significance_error,
                "reported_over_brute_force": gv.p_value / p if k else None,
                "global_z_difference": (gv.significance - float(stats.norm.isf(p))) if k else None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--n-pseudo", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    load_start = os.getloadavg()
    start = time.perf_counter()
    config = SEARCH_CONFIG
    spectra, windows = synthetic_search(args.events, 0, args.seed)
    executor = pseudo_executor(args.workers)
    lee = look_elsewhere(spectra, config, args.n_pseudo, executor, random_state=args.seed)
    wall = time.perf_counter() - start
    load_end = os.getloadavg()
    maxima = lee.max_significances[np.isfinite(lee.max_significances)]
    use = np.ones(lee.local_significances.shape[1:], bool)
    for w, e in lee.excluded_cells:
        use[w, e] = False
    maps = np.where(use, lee.local_significances, np.nan)[np.isfinite(lee.max_significances)]
    finite = maps[np.isfinite(maps)]
    payload = {
        "benchmark": "lee_validation",
        "setup": search_setup(args, len(windows), (load_start, load_end)),
        "wall_seconds": wall,
        "lee_cpu_seconds": lee.cpu_seconds,
        "n_tested_cells": lee.n_tested_cells,
        "excluded_cells": [list(c) for c in lee.excluded_cells],
        "local_z_all_cells": {"mean": float(finite.mean()), "std": float(finite.std())},
        "comparison": [
            *compare(maxima, maps, lee.n_tested_cells, 200, args.seed),
            *compare(maxima, maps, lee.n_tested_cells, 1000, args.seed),
        ],
        "method": (
            "Gross-Vitells: E[excursions above z] = Phi(-z) + (N1 + N2 z) exp(-z^2/2) fitted at "
            "z = 0.5..2.0, capped by Bonferroni n_cells Phi(-z)"
        ),
    }
    write_atomic(args.output, json.dumps(payload, indent=1))
    for row in payload["comparison"]:
        print(
            json.dumps(
                {
                    k: row[k]
                    for k in (
                        "local_z",
                        "extrapolated_from",
                        "brute_force_p",
                        "gross_vitells_p",
                        "bonferroni_p",
                        "reported_method",
                        "global_z_difference",
                    )
                }
            )
        )


if __name__ == "__main__":
    main()
