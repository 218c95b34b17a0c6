"""Benchmark: 20 windows x 4 efficiencies scan with 1000 look-elsewhere pseudo-experiments.

Synthetic dijet spectrum (LHCO-like dijet shape) with toy scores independent of mjj, plus an
optional injected Gaussian bump with high scores. Writes benchmarks/results/scan_lee.json.
Target (issue 12): under 60 s wall on two CPU cores. Also checks exactness: the vectorised
pseudo-scan against the cell-by-cell `scan_spectra` on the first pseudo-experiments.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from analysis.executor import InProcessExecutor, ProcessPoolExecutor
from analysis.stats import (
    ScanConfig,
    build_window_model,
    discovery_significance,
    fast_discovery_significance,
    fixed_width_edges,
    look_elsewhere,
    pseudo_scan,
    sample_dijet,
    scan_spectra,
    select_spectra,
    window_fit,
)
from generative.fileio import write_atomic

SHAPE = np.array([0.0, 7.88, 5.25, 1.22])
RESULTS = Path(__file__).resolve().parent / "results" / "scan_lee.json"


def synthetic_events(n_events: int, n_signal: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Dijet background with uniform scores, plus a 3.5 TeV bump (sigma 0.1 TeV) scoring > 0.99."""
    rng = np.random.default_rng(seed)
    mjj = sample_dijet(n_events, SHAPE, 2.6, 6.0, rng)
    scores = rng.random(n_events)
    signal_mjj = rng.normal(3.5, 0.1, n_signal)
    signal_scores = 1.0 - 0.01 * rng.random(n_signal)
    return np.r_[mjj, signal_mjj], np.r_[scores, signal_scores]


#: the benchmark search: 20 overlapping 0.4 TeV windows, 0.1 TeV bins, four selections
SEARCH_CONFIG = ScanConfig(efficiencies=(1.0, 0.1, 0.01, 0.002), n_params=4, resolution=0.1 / 3.5)


def synthetic_search(n_events: int, n_signal: int, seed: int):
    """Selected spectra of the benchmark search on synthetic events, and their windows."""
    edges = fixed_width_edges(2.6, 6.0, 0.1)
    windows = [(round(c - 0.2, 2), round(c + 0.2, 2)) for c in 3.0 + 0.1 * np.arange(20)]
    mjj, scores = synthetic_events(n_events, n_signal, seed)
    return select_spectra(mjj, scores, windows, edges, SEARCH_CONFIG.efficiencies), windows


def pseudo_executor(workers: int) -> ProcessPoolExecutor | InProcessExecutor:
    """Where the pseudo-experiments run: a pool of `workers` processes, or in process."""
    return ProcessPoolExecutor(workers) if workers > 1 else InProcessExecutor()


def search_setup(
    args: argparse.Namespace, n_windows: int, load: tuple[tuple[float, ...], tuple[float, ...]]
) -> dict:
    """The benchmark search's setup as the JSON of both look-elsewhere benchmarks records it."""
    config = SEARCH_CONFIG
    return {
        "events": args.events,
        "windows": n_windows,
        "efficiencies": list(config.efficiencies),
        "n_params": config.n_params,
        "n_pseudo": args.n_pseudo,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "load_average_start": load[0],
        "load_average_end": load[1],
    }


def pyhf_versus_fast(spectra, config: ScanConfig, cell: tuple[int, int]) -> dict:
    """Time one q0 test of the best cell through pyhf and through the fast path."""
    w, e = cell
    counts, window = spectra.counts[w, e], spectra.windows[w]
    fit = window_fit(counts, spectra.edges, window, config)
    model = build_window_model(counts, spectra.edges, window, fit, resolution=config.resolution)
    timings = {}
    for name, test in (("pyhf", discovery_significance), ("fast", fast_discovery_significance)):
        start = time.perf_counter()
        result = test(model)
        timings[name] = {
            "seconds": time.perf_counter() - start,
            "significance": result.significance,
        }
    return timings


def vectorised_versus_scan(spectra, config: ScanConfig, lee, n_checks: int, seed: int) -> dict:
    """Largest |Z difference| of the vectorised pseudo-scan against `scan_spectra`, cell by cell."""
    from analysis.stats.null import background_only_model

    null = background_only_model(spectra, config)
    rng = np.random.default_rng(seed)
    inclusive, counts = null.sample_batch(rng, n_checks)
    start = time.perf_counter()
    batch = pseudo_scan(spectra, inclusive, counts, config)
    batch_seconds = time.perf_counter() - start
    start = time.perf_counter()
    single = np.array(
        [
            scan_spectra(
                spectra.replace_counts(inclusive[i], counts[i]), config
            ).signed_significances
            for i in range(n_checks)
        ]
    )
    single_seconds = time.perf_counter() - start
    both = np.isfinite(batch) & np.isfinite(single)
    return {
        "pseudo_experiments": n_checks,
        "cells": int(batch[0].size),
        "max_abs_z_difference": float(np.max(np.abs(batch - single)[both])),
        "tested_cell_disagreements": int(np.sum(np.isfinite(batch) != np.isfinite(single))),
        "vectorised_seconds": batch_seconds,
        "scan_spectra_seconds": single_seconds,
    }


def write_atomically(payload: dict, path: Path) -> None:
    write_atomic(path, json.dumps(payload, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--n-signal", type=int, default=100)
    parser.add_argument("--n-pseudo", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--exactness-checks", type=int, default=20)
    args = parser.parse_args()

    load_start = os.getloadavg()
    start = time.perf_counter()
    config = SEARCH_CONFIG
    spectra, windows = synthetic_search(args.events, args.n_signal, args.seed)
    edges = spectra.edges
    select_seconds = time.perf_counter() - start

    scan_start = time.perf_counter()
    observed = scan_spectra(spectra, config)
    scan_seconds = time.perf_counter() - scan_start

    executor = pseudo_executor(args.workers)
    lee_start = time.perf_counter()
    lee = look_elsewhere(
        spectra, config, args.n_pseudo, executor, random_state=args.seed, observed=observed
    )
    lee_seconds = time.perf_counter() - lee_start
    wall = time.perf_counter() - start
    cpu_main = time.process_time()
    load_end = os.getloadavg()
    exactness = vectorised_versus_scan(spectra, config, lee, args.exactness_checks, args.seed)
    n_cells = observed.fit_valid.size
    payload = {
        "benchmark": "scan_lee",
        "setup": {
            **search_setup(args, len(windows), (load_start, load_end)),
            "injected_signal": args.n_signal,
            "bins": int(edges.size - 1),
            "method": config.method,
        },
        "wall_seconds": wall,
        "select_seconds": select_seconds,
        "observed_scan_seconds": scan_seconds,
        "lee_seconds": lee_seconds,
        "fits": lee.n_fits,
        "main_process_cpu_seconds": cpu_main,
        "per_cell_seconds": lee_seconds * args.workers / lee.n_fits,
        "lee_cpu_seconds": lee.cpu_seconds,
        "lee_cpu_seconds_per_cell": lee.cpu_seconds / lee.n_fits,
        # What the pseudo-experiments would take with the workers' cores to themselves.
        "lee_wall_seconds_if_uncontended": lee.cpu_seconds / args.workers,
        "failed_fit_fraction": lee.failed_fit_fraction,
        "observed_failed_fraction": observed.failed_fraction,
        "observed_max_local_significance": observed.max_significance,
        "observed_best_window": [
            observed.windows[observed.best[0]].sr_low,
            observed.windows[observed.best[0]].sr_high,
        ],
        "observed_best_efficiency": float(observed.efficiencies[observed.best[1]]),
        "cells": n_cells,
        "look_elsewhere": lee.to_dict(),
        "pseudo_max_significance_quantiles": dict(
            zip(
                ("50%", "90%", "99%"),
                np.nanquantile(lee.max_significances, [0.5, 0.9, 0.99]).tolist(),
                strict=True,
            )
        ),
        "q0_timing_best_cell": pyhf_versus_fast(spectra, config, observed.best),
        "vectorised_versus_scan_spectra": exactness,
        "target_wall_seconds": 60.0,
        "target_met": lee_seconds < 60.0,
    }
    write_atomically(payload, args.output)
    print(
        json.dumps(
            {
                k: payload[k]
                for k in ("wall_seconds", "lee_seconds", "lee_cpu_seconds", "failed_fit_fraction")
            }
        )
    )
    print(json.dumps(payload["look_elsewhere"]))


if __name__ == "__main__":
    main()
