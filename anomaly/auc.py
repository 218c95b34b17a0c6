"""The null distribution of a two-sample AUC, shared by the template tests and the closure check."""

from __future__ import annotations

import numpy as np

__all__ = ["auc_null_error"]


def auc_null_error(n_a: int, n_b: int) -> float:
    """Standard error of the AUC of two samples drawn from one distribution (Mann-Whitney)."""
    if n_a < 1 or n_b < 1:
        raise ValueError(f"both samples need events, got {n_a} and {n_b}")
    return float(np.sqrt((n_a + n_b + 1) / (12.0 * n_a * n_b)))
