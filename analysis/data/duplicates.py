"""Duplicated events, exact or near-exact, within a file or across files.

An event and its copy would land in different folds: the copy then trains the model that scores
the event, which breaks the out-of-fold guarantee and makes a fake excess (the same background
file listed twice gave local Z 19). Overlapping files and a merge done twice are common, so
the events of every search are checked and duplicates refused by default, naming the files;
on request (``data.duplicates: drop``) the first event of each group is kept and its copies
dropped, so no event can be scored by a model that trained on its twin.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "NEAR_RTOL",
    "DuplicateEventsError",
    "Duplicates",
    "describe",
    "find_duplicates",
    "read_files",
]

log = logging.getLogger(__name__)

#: relative difference under which two values count as equal: a float32 round trip (6e-8) or a
#: value printed with 7 significant digits is still the same event
NEAR_RTOL = 1e-6


class DuplicateEventsError(ValueError):
    """The events hold duplicates; the message names the files and counts."""


@dataclass(frozen=True)
class Duplicates:
    """Groups of events that are the same up to `NEAR_RTOL` in every column."""

    #: group id per event; events without a twin have a group of their own
    groups: np.ndarray
    #: events that repeat an earlier one (group members beyond the first)
    n_repeated: int
    #: per (file of the first event, file of its repeat): how many repeats
    by_files: dict[tuple[int, int], int]


def _close(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    return np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b))


def find_duplicates(
    values: np.ndarray, sources: np.ndarray | None = None, *, rtol: float = NEAR_RTOL
) -> Duplicates:
    """Group rows of `values` (events x columns) equal within `rtol` in every column.

    Rows are sorted by their most varied column; twins are then neighbours in that order, so a
    sweep over small lags finds them in O(n log n) for continuous data.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    sources = np.zeros(n, dtype=int) if sources is None else np.asarray(sources)
    if n < 2:
        return Duplicates(np.arange(n), 0, {})
    sample = values[:: max(1, n // 10_000)]
    key = int(np.argmax([len(np.unique(c)) for c in sample.T]))
    order = np.argsort(values[:, key], kind="stable")
    ordered = values[order]
    first, second = [], []
    open_rows = np.arange(n - 1)
    for lag in range(1, n):
        open_rows = open_rows[open_rows + lag < n]
        near = _close(ordered[open_rows, key], ordered[open_rows + lag, key], rtol)
        if not near.any():
            break
        rows = open_rows[near]
        same = _close(ordered[rows], ordered[rows + lag], rtol).all(axis=1)
        first.append(order[rows[same]])
        second.append(order[rows[same] + lag])
        # A row linked to its twin needs no longer lags: later twins link through that twin.
        open_rows = np.setdiff1d(open_rows[near], rows[same], assume_unique=True)
    a = np.concatenate(first) if first else np.empty(0, dtype=int)
    b = np.concatenate(second) if second else np.empty(0, dtype=int)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, groups = connected_components(graph, directed=False)
    # The first event of each group (in file order) is the original; the rest repeat it.
    _, leader = np.unique(groups, return_index=True)
    original = leader[groups]
    repeats = np.flatnonzero(original != np.arange(n))
    pairs = zip(sources[original[repeats]].tolist(), sources[repeats].tolist(), strict=True)
    by_files = Counter(pairs)
    return Duplicates(groups, len(repeats), dict(by_files))


def describe(found: Duplicates, names: Sequence[str]) -> str:
    """One line: how many events repeat others, in which files."""
    parts = []
    for (a, b), count in sorted(found.by_files.items(), key=lambda kv: -kv[1])[:3]:
        if a == b:
            parts.append(f"{count} within {names[a]}")
        elif names[a] == names[b]:
            parts.append(f"{count} because {names[a]} is listed twice")
        else:
            parts.append(f"{count} of {names[b]} repeat events of {names[a]}")
    more = "" if len(found.by_files) <= 3 else f" and {len(found.by_files) - 3} more file pairs"
    return (
        f"{found.n_repeated} events are duplicates (equal within a relative {NEAR_RTOL:g} in "
        f"every column) of other events: {'; '.join(parts)}{more}"
    )


def read_files(
    paths: Sequence[str | Path],
    read: Callable[[Path], pd.DataFrame],
    duplicates: Literal["refuse", "drop"] = "refuse",
) -> pd.DataFrame:
    """Read and concatenate event files; refuse (or drop) duplicated events within or across them.

    With ``duplicates="drop"`` the first event of each group (in file order) is kept.
    """
    tables = [read(Path(p)) for p in paths]
    events = pd.concat(tables, ignore_index=True)
    sources = np.repeat(np.arange(len(tables)), [len(t) for t in tables])
    numeric = events.select_dtypes("number").drop(columns="label", errors="ignore")
    found = find_duplicates(numeric.to_numpy(), sources)
    if not found.n_repeated:
        return events
    what = describe(found, [str(p) for p in paths])
    if duplicates == "refuse":
        raise DuplicateEventsError(
            f"data.paths: {what}. An event and its copy in different folds would score each "
            "other and fake an excess; remove them, or set data.duplicates: drop"
        )
    log.warning("data.paths: %s; keeping the first of each (data.duplicates: drop)", what)
    _, first = np.unique(found.groups, return_index=True)
    return events.iloc[np.sort(first)].reset_index(drop=True)
