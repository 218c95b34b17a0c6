"""Signal injection and the standard benchmark split (data, held-out test set, extra background).

Works on raw LHCO-layout tables and on features tables alike: ``mjj`` (TeV) is taken from an
``mjj`` column when there is one and computed from the jets otherwise. Truth labels are kept
(added as 0 for background and 1 for signal where a table has none), every draw is seeded, and
the counts are exact: ``n_signal`` events, or exactly ``round(s_over_b * n_background_in_region)``
signal events inside the region.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data.features import FEATURES, MJJ
from analysis.data.readers import read_lhco
from analysis.data.validation import LABEL_COLUMN

RandomState = int | np.random.Generator | np.random.SeedSequence | None

#: File names of the benchmark data beside the project (../shared/data/lhco).
LHCO_BACKGROUND_PATTERN = "qcd_part{:02d}.h5"
LHCO_SIGNAL_FILE = "signal_wprime3500_x500_y100.h5"


@dataclass(frozen=True, eq=False)
class Injection:
    """A sample with injected signal (rows shuffled, labels kept) and the record of the draw."""

    data: pd.DataFrame
    injected_index: np.ndarray  # row positions of the injected events in ``data``
    signal_index: pd.Index  # index labels of the injected events in the signal pool
    n_injected: int
    n_background: int
    region: tuple[float, float] | None  # mjj interval (TeV) of the in-region counts
    n_signal_in_region: int | None
    n_background_in_region: int | None

    @property
    def s_over_b(self) -> float | None:
        """Injected signal over background inside ``region`` (None without a region)."""
        if self.region is None or not self.n_background_in_region:
            return None
        return self.n_signal_in_region / self.n_background_in_region

    def summary(self) -> dict:
        """JSON-ready record of the injection (no event data)."""
        return {
            "n_injected": self.n_injected,
            "n_background": self.n_background,
            "region_tev": None if self.region is None else list(self.region),
            "n_signal_in_region": self.n_signal_in_region,
            "n_background_in_region": self.n_background_in_region,
            "s_over_b_in_region": self.s_over_b,
        }


@dataclass(frozen=True, eq=False)
class BenchmarkSplit:
    """Injected data, a labelled test set no model trains on, and extra background for IAD."""

    data: pd.DataFrame
    test: pd.DataFrame
    extra_background: pd.DataFrame
    injection: Injection
    n_test_signal: int

    def map(self, func: Callable[[pd.DataFrame], pd.DataFrame]) -> BenchmarkSplit:
        """The same split with ``func`` (e.g. ``build_features``) applied to every table."""
        data = func(self.data)
        return dataclasses.replace(
            self,
            data=data,
            test=func(self.test),
            extra_background=func(self.extra_background),
            injection=dataclasses.replace(self.injection, data=data),
        )


def inject_signal(
    background: pd.DataFrame,
    signal_pool: pd.DataFrame,
    *,
    n_signal: int | None = None,
    s_over_b: float | None = None,
    region: tuple[float, float] | None = None,
    random_state: RandomState = None,
) -> Injection:
    """Add signal events drawn without replacement from ``signal_pool`` to ``background``.

    Give ``n_signal`` (exact total) or ``s_over_b`` with ``region`` (lo, hi) in TeV: events are
    drawn in random order until exactly ``round(s_over_b * n_background_in_region)`` of them fall
    in the region, so the out-of-region tail comes along in its natural proportion.
    """
    if (n_signal is None) == (s_over_b is None):
        raise ValueError("give exactly one of n_signal and s_over_b")
    background, signal_pool = _with_labels(background, signal_pool)
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(signal_pool))
    counts = None if region is None else _region_counts(background, signal_pool, region)
    if n_signal is not None:
        _check_count("n_signal", n_signal)
        if n_signal > len(signal_pool):
            raise ValueError(
                f"cannot inject {n_signal} signal events from a pool of {len(signal_pool)}"
            )
        chosen = order[:n_signal]
    else:
        if region is None:
            raise ValueError("s_over_b needs the region (lo, hi) in TeV where it holds")
        chosen = _draw_for_s_over_b(s_over_b, counts, order, region)
    data, injected_index = _shuffled_concat(background, signal_pool.iloc[chosen], rng)
    return Injection(
        data=data,
        injected_index=injected_index,
        signal_index=signal_pool.index[np.sort(chosen)],
        n_injected=len(chosen),
        n_background=len(background),
        region=None if region is None else (float(region[0]), float(region[1])),
        n_signal_in_region=None if counts is None else int(counts[1][chosen].sum()),
        n_background_in_region=None if counts is None else counts[0],
    )


def benchmark_split(
    background: pd.DataFrame,
    signal: pd.DataFrame,
    *,
    n_inject: int,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    n_test_signal: int | None = None,
    region: tuple[float, float] | None = None,
    random_state: RandomState = None,
) -> BenchmarkSplit:
    """Split ``background`` by ``fractions`` (data, extra background, test) and inject signal."""
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(
            f"fractions (data, extra background, test) must be 3 non-negative numbers summing "
            f"to 1, got {fractions}"
        )
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(background))
    n_data, n_extra = (int(f * len(background)) for f in fractions[:2])
    parts = np.split(order, [n_data, n_data + n_extra])
    return benchmark_split_from_parts(
        *(background.iloc[np.sort(p)] for p in parts),
        signal,
        n_inject=n_inject,
        n_test_signal=n_test_signal,
        region=region,
        random_state=rng,
    )


def benchmark_split_from_parts(
    data_background: pd.DataFrame,
    extra_background: pd.DataFrame,
    test_background: pd.DataFrame,
    signal: pd.DataFrame,
    *,
    n_inject: int,
    n_test_signal: int | None = None,
    region: tuple[float, float] | None = None,
    random_state: RandomState = None,
) -> BenchmarkSplit:
    """Benchmark split from explicit background parts; signal not injected goes to the test set.

    ``n_test_signal`` caps the test signal (default: every signal event not injected).
    """
    _check_count("n_inject", n_inject)
    n_left = len(signal) - n_inject
    n_test_signal = max(n_left, 0) if n_test_signal is None else n_test_signal
    _check_count("n_test_signal", n_test_signal)
    if n_test_signal > n_left:
        raise ValueError(
            f"cannot take {n_inject} injected + {n_test_signal} test signal events "
            f"from {len(signal)} signal events"
        )
    if min(len(data_background), len(test_background)) == 0:
        raise ValueError(
            f"data and test background must not be empty, got {len(data_background)} and "
            f"{len(test_background)} events"
        )
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(signal))
    injection = inject_signal(
        data_background,
        signal.iloc[np.sort(order[:n_inject])],
        n_signal=n_inject,
        region=region,
        random_state=rng,
    )
    test_background, test_signal = _with_labels(
        test_background, signal.iloc[np.sort(order[n_inject : n_inject + n_test_signal])]
    )
    test, _ = _shuffled_concat(test_background, test_signal, rng)
    extra = _ensure_label(extra_background, 0, _label_dtype(extra_background, signal))
    return BenchmarkSplit(
        data=injection.data,
        test=test,
        extra_background=extra.reset_index(drop=True),
        injection=injection,
        n_test_signal=n_test_signal,
    )


def lhco_benchmark_split(
    directory: str | Path,
    *,
    n_inject: int = 1000,
    data_parts: Sequence[int] = (1, 2, 3, 4, 5, 6),
    extra_parts: Sequence[int] = (7, 8),
    test_parts: Sequence[int] = (9, 10),
    n_test_signal: int | None = None,
    region: tuple[float, float] | None = (3.3, 3.7),
    background_pattern: str = LHCO_BACKGROUND_PATTERN,
    signal_file: str = LHCO_SIGNAL_FILE,
    random_state: RandomState = None,
) -> BenchmarkSplit:
    """The recommended split of the LHCO-layout benchmark files in ``directory`` (raw tables).

    Parts 01-06 are data (signal injected), 07-08 extra background, 09-10 plus every signal
    event not injected the test set; ``region`` only sets the in-region counts of the record.
    """
    directory = Path(directory)
    groups = {"data_parts": data_parts, "extra_parts": extra_parts, "test_parts": test_parts}
    empty = [name for name, group in groups.items() if not len(group)]
    if empty:
        raise ValueError(f"{empty} must name at least one part each")
    paths = [[directory / background_pattern.format(i) for i in g] for g in groups.values()]
    signal_path = directory / signal_file
    missing = [str(p) for p in (*itertools.chain(*paths), signal_path) if not p.exists()]
    if missing:
        raise FileNotFoundError(f"benchmark files missing in {directory}: {missing}")
    data_bkg, extra_bkg, test_bkg = (
        pd.concat([read_lhco(p) for p in group], ignore_index=True) for group in paths
    )
    return benchmark_split_from_parts(
        data_bkg,
        extra_bkg,
        test_bkg,
        read_lhco(signal_path),
        n_inject=n_inject,
        n_test_signal=n_test_signal,
        region=region,
        random_state=random_state,
    )


def _mjj_tev(df: pd.DataFrame) -> np.ndarray:
    if MJJ in df.columns:
        return df[MJJ].to_numpy(dtype=np.float64)
    return FEATURES[MJJ](df)


def _region_counts(
    background: pd.DataFrame, signal_pool: pd.DataFrame, region: tuple[float, float]
) -> tuple[int, np.ndarray]:
    """(background events in region, in-region mask of the pool); region is [lo, hi)."""
    lo, hi = region
    if not lo < hi:
        raise ValueError(f"region must be (lo, hi) with lo < hi in TeV, got {region}")
    mjj_b, mjj_s = _mjj_tev(background), _mjj_tev(signal_pool)
    return int(np.count_nonzero((mjj_b >= lo) & (mjj_b < hi))), (mjj_s >= lo) & (mjj_s < hi)


def _draw_for_s_over_b(
    s_over_b: float, counts: tuple[int, np.ndarray], order: np.ndarray, region: tuple
) -> np.ndarray:
    n_bkg_region, pool_in_region = counts
    if not s_over_b >= 0:
        raise ValueError(f"s_over_b must be >= 0, got {s_over_b}")
    if n_bkg_region == 0:
        raise ValueError(f"no background events in the region {region} TeV: S/B is undefined")
    target = round(s_over_b * n_bkg_region)
    cumulative = np.cumsum(pool_in_region[order])
    available = int(cumulative[-1]) if len(cumulative) else 0
    if target > available:
        raise ValueError(
            f"S/B {s_over_b} in {region} TeV needs {target} signal events there "
            f"({n_bkg_region} background), the pool has {available}"
        )
    n_draw = 0 if target == 0 else int(np.searchsorted(cumulative, target)) + 1
    return order[:n_draw]


def _with_labels(
    background: pd.DataFrame, signal: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables with the same columns, a label column added (0 / 1) where it is missing."""
    for name, df in (("background", background), ("signal", signal)):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    dtype = _label_dtype(background, signal)
    background = _ensure_label(background, 0, dtype)
    signal = _ensure_label(signal, 1, dtype)
    missing = sorted(set(background.columns) ^ set(signal.columns))
    if missing:
        raise KeyError(f"background and signal tables differ in column(s) {missing}")
    return background, signal[list(background.columns)]


def _label_dtype(*tables: pd.DataFrame) -> np.dtype:
    """The label dtype already in use (raw files store float64 labels), else int64."""
    return next(
        (df[LABEL_COLUMN].dtype for df in tables if LABEL_COLUMN in df.columns),
        np.dtype(np.int64),
    )


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _ensure_label(df: pd.DataFrame, value: int, dtype: np.dtype) -> pd.DataFrame:
    if LABEL_COLUMN in df.columns:
        return df
    return df.assign(**{LABEL_COLUMN: np.full(len(df), value, dtype=dtype)})


def _shuffled_concat(
    background: pd.DataFrame, signal: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of both tables in random order (fresh index) and the positions of the signal rows."""
    order = rng.permutation(len(background) + len(signal))
    combined = pd.concat([background, signal], ignore_index=True)
    data = combined.iloc[order].reset_index(drop=True)
    return data, np.flatnonzero(order >= len(background))
