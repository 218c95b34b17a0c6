"""Input checks shared by the generative models: shapes, finiteness, fitted state."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sklearn.exceptions import NotFittedError

__all__ = ["NotFittedError", "check_array", "check_context", "check_is_fitted"]


def check_array(
    X: object, name: str = "X", *, n_features: int | None = None, allow_empty: bool = False
) -> np.ndarray:
    """Return `X` as a finite 2-D float64 array, or raise an error naming the problem."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric, got {type(X).__name__}: {err}") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (events x features), got shape {arr.shape}")
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (0 events)")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} columns, the model was fitted with {n_features}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        n_rows = int(bad.any(axis=1).sum())
        kinds = []
        if np.isnan(arr).any():
            kinds.append("NaN")
        if np.isinf(arr).any():
            kinds.append("inf")
        raise ValueError(f"{name} contains {'/'.join(kinds)} in {n_rows} of {arr.shape[0]} rows")
    return arr


def check_context(
    context: object, n_rows: int | None, *, n_context: int | None = None, name: str = "context"
) -> np.ndarray | None:
    """Validate a conditioning array against the number of events and the fitted context width."""
    if context is None:
        if n_context:
            raise ValueError(f"the model is conditional on {n_context} variables: pass {name}")
        return None
    if n_context == 0:
        raise ValueError(f"the model was fitted without {name}; do not pass one")
    arr = check_array(context, name, n_features=n_context, allow_empty=n_rows == 0)
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(f"{name} has {arr.shape[0]} rows but the data have {n_rows}")
    return arr


def check_is_fitted(model: object, attributes: Iterable[str]) -> None:
    """Raise NotFittedError unless every attribute in `attributes` has been set by `fit`."""
    missing = [a for a in attributes if getattr(model, a, None) is None]
    if missing:
        raise NotFittedError(
            f"this {type(model).__name__} is not fitted yet: call fit() before using it"
        )
