"""Timing of shower generation: wall and CPU milliseconds per shower at a given batch size.

CaloChallenge papers quote generation time per shower at fixed batch sizes; `generation_times`
measures batch 1 (median of repeated calls after a warm-up), 1,000 and 10,000 showers, with the
resident-set peak, and returns the showers of the batch-10k pass for evaluation.
"""

from __future__ import annotations

import resource
import statistics
import time

import numpy as np

from generative.calo.base import ShowerModel

__all__ = ["Stopwatch", "generation_times"]


class Stopwatch:
    """Wall and CPU seconds of a block, and the resident-set peak after it."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        self.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def record(self) -> dict[str, float]:
        """The measurement as JSON-ready numbers."""
        return {"wall_s": self.wall, "cpu_s": self.cpu, "peak_rss_mb": self.peak_rss_mb}


def generation_times(
    model: ShowerModel, energies: np.ndarray, repeats: int, seed: int
) -> tuple[dict[str, dict[str, float]], np.ndarray]:
    """Wall and CPU ms per shower at batch 1, 1,000 and 10,000; the full sample at batch 10k."""
    model.sample(energies[:1], batch_size=1, random_state=seed)  # warm-up
    single = []
    for i in range(repeats):
        with Stopwatch() as watch:
            model.sample(energies[i : i + 1], batch_size=1, random_state=seed + i)
        single.append((watch.wall, watch.cpu))
    times = {
        "batch_1": {
            "wall_ms": 1e3 * statistics.median(w for w, _ in single),
            "cpu_ms": 1e3 * statistics.median(c for _, c in single),
        }
    }
    with Stopwatch() as watch:
        model.sample(energies[:1000], batch_size=1000, random_state=seed)
    n = min(1000, len(energies))
    times["batch_1000"] = {"wall_ms": 1e3 * watch.wall / n, "cpu_ms": 1e3 * watch.cpu / n}
    with Stopwatch() as watch:
        showers = model.sample(energies, batch_size=10_000, random_state=seed)
    n = len(energies)
    times["batch_10000"] = {
        "wall_ms": 1e3 * watch.wall / n,
        "cpu_ms": 1e3 * watch.cpu / n,
        "n_showers": n,
        "peak_rss_mb": watch.peak_rss_mb,
    }
    return times, showers
