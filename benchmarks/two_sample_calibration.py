"""How much the two-sample AUC test moves from one classifier seed to the next, on the LHCO data.

CATHODE's template tests and closure AUC are out-of-fold HGB two-sample tests
(anomaly.template_quality.two_sample_auc) whose quoted error is the Mann-Whitney null error of a
fixed score. The classifier itself is trained anew by each test, with its own folds and seeds.
Here the same two samples are tested with `--repeats` test seeds:
- `control`: the SR data (parts 01-06 with `--n-inject` signal events) against the true SR
  background (parts 07-08), the closure test's reference point;
- `null`: the true SR background against itself, split in random halves (AUC 0.5 expected).
Per pair: the AUC of every seed, their mean and standard deviation, and the quoted error.

    nice -n 10 python benchmarks/two_sample_calibration.py --repeats 8

Output: benchmarks/results/two_sample_calibration.json (written atomically).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from anomaly.template_quality import two_sample_auc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lhco_sic import DATA, RESULTS, load, ready, settings_of, write_benchmark


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=DATA)
    p.add_argument("--seed", type=int, default=0, help="the split and injection")
    p.add_argument("--repeats", type=int, default=8, help="test seeds per pair")
    p.add_argument("--n-inject", type=int, default=1000)
    p.add_argument("--sr", type=float, nargs=2, default=(3.3, 3.7), metavar=("LOW", "HIGH"))
    p.add_argument("--output", type=Path, default=RESULTS / "two_sample_calibration.json")
    args = p.parse_args(argv)
    args.sb_width, args.fraction = None, 1.0  # lhco_sic.load: all sidebands, every event
    if args.repeats < 2:
        p.error("--repeats must be at least 2")
    return args


def repeated(a: np.ndarray, b: np.ndarray, repeats: int) -> dict[str, object]:
    """The test of A against B with test seeds 0 .. repeats-1: every AUC, mean, spread, error."""
    tests = [two_sample_auc(a, b, random_state=seed) for seed in range(repeats)]
    aucs = [t.auc for t in tests]
    return {
        "n_a": len(a),
        "n_b": len(b),
        "auc": aucs,
        "mean": float(np.mean(aucs)),
        "std": float(np.std(aucs, ddof=1)),
        "quoted_error": tests[0].error,
    }


def main(argv: list[str] | None = None) -> int:
    """Run both pairs and write the JSON."""
    args = parse_args(argv)
    if not ready(args.data_dir):
        return 0
    cpu, wall = time.process_time(), time.perf_counter()
    d = load(args, args.seed)
    background = d["background"]
    half = np.random.default_rng(args.seed).permutation(len(background))
    first, second = np.array_split(half, 2)
    with threadpool_limits(1):
        pairs = {
            "control": repeated(d["X"][d["in_sr"]], background, args.repeats),
            "null": repeated(background[first], background[second], args.repeats),
        }
    for name, pair in pairs.items():
        quoted = pair["quoted_error"]
        print(f"{name}: mean {pair['mean']:.4f} std {pair['std']:.4f} (quoted {quoted:.4f})")
    settings = settings_of(args)
    write_benchmark(
        args.output,
        "two_sample_calibration",
        settings,
        pairs=pairs,
        cpu_seconds=time.process_time() - cpu,
        wall_seconds=time.perf_counter() - wall,
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
