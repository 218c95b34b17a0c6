"""One finished search, every method's cells under both backgrounds: fit and reference.

    python benchmarks/search_backgrounds.py RESULTS_DIR [--output JSON]

Reads RESULTS_DIR/config.json and the detector units of its store (no detector is refitted),
rebuilds the events from the config's seed as `resonance-search run` did, and scans every method
with `background: fit` (the dijet fit of each cut's selected sidebands) and, where the detector
has a background sample of its own (CATHODE's template), with `background: reference` (the
inclusive fit times the cut's efficiency on that sample, the measured mismodelling a nuisance;
windows failing closure without that measurement left out). Per method and background: the
signed local Z of every cell, the cells above local Z 3 and the largest. On a background-only
search (issue 16) no cell may exceed 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from analysis.config import SearchConfig, load_config
from analysis.inputs import load_search_data, search_windows
from analysis.stats import scan_spectra, select_spectra
from analysis.store import ResultStore
from analysis.units import method_labels
from analysis.workflow import gather_scores, scan_settings, search_seeds
from generative.fileio import write_atomic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help="output folder of a finished resonance-search run")
    p.add_argument("--output", type=Path, default=None, help="JSON (default: beside the results)")
    return p.parse_args(argv)


def _cells(z: np.ndarray, valid: np.ndarray) -> dict[str, Any]:
    tested = valid & np.isfinite(z)
    return {
        "signed_local_z": [
            [float(v) if t else None for v, t in zip(row, ok, strict=True)]
            for row, ok in zip(z, tested, strict=True)
        ],
        "n_tested": int(tested.sum()),
        "cells_above_z3": int(np.sum(z[tested] > 3)),
        "max_z": float(z[tested].max()) if tested.any() else None,
    }


def rescan(config: SearchConfig) -> dict[str, Any]:
    """Per method label and background: the local Z of every cell of the stored search."""
    store = ResultStore(config.output, config.fingerprint())
    data = load_search_data(config.data, search_seeds(config)[0])
    windows = search_windows(config)
    mjj = data.events["mjj"].to_numpy()
    edges, scan_config = scan_settings(config)
    out: dict[str, Any] = {}
    for label in method_labels(config.methods):
        gathered = gather_scores(store, label, windows, mjj)
        backgrounds = {"fit": None}
        if gathered.references is not None:
            backgrounds["reference"] = gathered.references
        out[label] = {}
        for name, references in backgrounds.items():
            spectra = select_spectra(
                mjj, gathered.matrix, windows, edges, scan_config.efficiencies, references
            )
            scan = scan_spectra(spectra, scan_config)
            out[label][name] = _cells(scan.signed_significances, scan.fit_valid)
    return {
        "windows": [w.name for w in windows],
        "efficiencies": list(scan_config.efficiencies),
        "methods": out,
    }


def main(argv: list[str] | None = None) -> int:
    """Rescan the stored search and write the JSON."""
    args = parse_args(argv)
    cpu, wall = time.process_time(), time.perf_counter()
    raw = json.loads((args.results / "config.json").read_text())
    config = load_config({**raw, "output": str(args.results)})
    payload = {
        "benchmark": "search_backgrounds",
        "results": str(args.results),
        **rescan(config),
        "cpu_seconds": time.process_time() - cpu,
        "wall_seconds": time.perf_counter() - wall,
        "load_average": os.getloadavg(),
    }
    output = args.output or args.results / "backgrounds.json"
    write_atomic(output, json.dumps(payload, indent=2))
    for label, backgrounds in payload["methods"].items():
        for name, cells in backgrounds.items():
            print(f"{label} {name}: max Z {cells['max_z']}, {cells['cells_above_z3']} above 3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
