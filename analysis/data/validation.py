"""Input checks for event tables: every problem is an error naming the column and the bad rows.

Rows are never dropped here: a table that fails a check is rejected as a whole, so a caller can
never analyse a silently shortened sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

#: Kinematic and substructure columns of the LHC Olympics 2020 R&D features layout (GeV).
LHCO_FEATURE_COLUMNS: tuple[str, ...] = (
    "pxj1",
    "pyj1",
    "pzj1",
    "mj1",
    "tau1j1",
    "tau2j1",
    "tau3j1",
    "pxj2",
    "pyj2",
    "pzj2",
    "mj2",
    "tau1j2",
    "tau2j2",
    "tau3j2",
)
#: Truth label column: 0 background, 1 signal (absent in black-box files).
LABEL_COLUMN = "label"
#: The full R&D layout, in file order.
LHCO_COLUMNS: tuple[str, ...] = (*LHCO_FEATURE_COLUMNS, LABEL_COLUMN)

# Masses and N-subjettiness values are non-negative by construction.
_LHCO_NONNEGATIVE = ("mj1", "mj2", "tau1j1", "tau2j1", "tau3j1", "tau1j2", "tau2j2", "tau3j2")
#: Feature-table columns that must be non-negative when present (masses, momenta, ratios).
NONNEGATIVE_FEATURES: frozenset[str] = frozenset(
    {
        "mjj",
        "mj1",
        "mj2",
        "delta_mj",
        "tau21_j1",
        "tau21_j2",
        "tau32_j1",
        "tau32_j2",
        "pt_j1",
        "pt_j2",
    }
)


def validate_lhco(
    df: pd.DataFrame, *, require_label: bool = False, columns: Sequence[str] | None = None
) -> None:
    """Check a table in the LHCO R&D layout; raise KeyError/TypeError/ValueError if it is bad.

    ``columns`` restricts the check to part of the layout (default: all of it, with ``label``
    when present or required).
    """
    if columns is None:
        columns = list(LHCO_FEATURE_COLUMNS)
        if LABEL_COLUMN in getattr(df, "columns", ()):
            columns.append(LABEL_COLUMN)
    unknown = sorted(set(columns) - set(LHCO_COLUMNS))
    if unknown:
        raise KeyError(f"{unknown} are not LHCO layout columns; known: {list(LHCO_COLUMNS)}")
    columns = list(columns)
    if require_label and LABEL_COLUMN not in columns:
        columns.append(LABEL_COLUMN)
    _check_table(df, columns, nonnegative=_LHCO_NONNEGATIVE, what="LHCO table")


def validate_features(
    df: pd.DataFrame,
    columns: Sequence[str],
    *,
    nonnegative: Iterable[str] | None = None,
) -> None:
    """Check the named columns of a features table (label, if named, must be 0/1).

    ``nonnegative`` defaults to the known non-negative features (masses, pT, tau ratios) among
    ``columns``.
    """
    columns = list(columns)
    if nonnegative is None:
        nonnegative = [c for c in columns if c in NONNEGATIVE_FEATURES]
    _check_table(df, columns, nonnegative=tuple(nonnegative), what="features table")


def _check_table(
    df: pd.DataFrame, columns: Sequence[str], *, nonnegative: Sequence[str], what: str
) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(
            f"{what} is missing column(s) {missing}; it has {list(map(str, df.columns))}"
        )
    n = len(df)
    _check_numeric(df, columns, n, what)
    _report(
        what,
        n,
        "NaN or inf",
        {c: int(np.count_nonzero(~np.isfinite(_values(df[c])))) for c in columns},
    )
    _report(
        what,
        n,
        "negative values",
        {c: int(np.count_nonzero(_values(df[c]) < 0)) for c in nonnegative if c in columns},
    )
    if LABEL_COLUMN in columns:
        labels = _values(df[LABEL_COLUMN])
        bad = int(np.count_nonzero((labels != 0) & (labels != 1)))
        _report(what, n, "label values other than 0/1", {LABEL_COLUMN: bad})


def _values(col: pd.Series) -> np.ndarray:
    # Nullable dtypes (Int64, Float64) hold pd.NA, which numpy ufuncs cannot compare.
    return col.to_numpy(dtype=np.float64, na_value=np.nan)


def _check_numeric(df: pd.DataFrame, columns: Sequence[str], n: int, what: str) -> None:
    problems = []
    for c in columns:
        col = df[c]
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_complex_dtype(
            col.dtype
        ):
            continue
        not_numbers = pd.to_numeric(col, errors="coerce").isna() & col.notna()
        problems.append(
            f"'{c}' (dtype {col.dtype}, {int(not_numbers.sum())} of {n} rows not numbers)"
        )
    if problems:
        raise TypeError(f"{what} has non-numeric column(s): " + ", ".join(problems))


def _report(what: str, n: int, problem: str, bad_counts: dict[str, int]) -> None:
    bad = {c: k for c, k in bad_counts.items() if k}
    if bad:
        detail = ", ".join(f"'{c}': {k} of {n} rows" for c, k in bad.items())
        raise ValueError(f"{what} has {problem} in column(s) {detail}")


def check_background(events: pd.DataFrame, windows: Sequence, *, min_sr: int, min_sb: int) -> None:
    """Refuse windows whose background alone is too small for the detectors and the fits.

    Injected (label 1) events do not count: a search of injected events with next to no
    background around them finds the injection and nothing else, a meaningless significance.
    """
    mjj = events["mjj"].to_numpy()
    if LABEL_COLUMN in events:
        mjj = mjj[events[LABEL_COLUMN].to_numpy() == 0]
    for window in windows:
        try:
            window.check(mjj, min_sr=min_sr, min_sb=min_sb)
        except ValueError as err:
            raise ValueError(
                f"the background (events without signal label) is too small: {err}; "
                "check data.paths and data.mjj_range"
            ) from None
