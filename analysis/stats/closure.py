"""Closure of a reference-calibrated background: can the classifier tell the reference from data?

A calibrated background assumes the reference (a CATHODE template, a simulated background) is
background as the signal-region data are. A signal fraction f in the signal region can raise
the out-of-fold AUC of data vs reference to at most 0.5 + f/2; the largest excess the scan sees
in the window bounds f. An AUC beyond that (plus CLOSURE_SIGMAS of its null standard error)
means the reference is mismodelled and the window's excesses would be artefacts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from analysis.regions import Window
from anomaly.auc import auc_null_error

__all__ = ["CLOSURE_SIGMAS", "ClosureOutcome", "Separation", "reference_closure", "separation"]

#: how many standard errors of the AUC a reference may differ from the data by chance
CLOSURE_SIGMAS = 5.0


@dataclass(frozen=True)
class Separation:
    """Out-of-fold AUC of signal-region data vs reference scores, with its null standard error."""

    auc: float
    error: float
    n_data: int
    n_reference: int


def separation(data_scores: np.ndarray, reference_scores: np.ndarray) -> Separation:
    """AUC (ties count one half) of data against reference scores and its error under the null."""
    n1, n0 = len(data_scores), len(reference_scores)
    if n1 == 0 or n0 == 0:
        raise ValueError(f"closure needs data and reference scores, got {n1} and {n0}")
    ranks = stats.rankdata(np.r_[data_scores, reference_scores])
    auc = float((ranks[:n1].sum() - 0.5 * n1 * (n1 + 1)) / (n1 * n0))
    return Separation(auc, auc_null_error(n1, n0), n1, n0)


@dataclass(frozen=True)
class ClosureOutcome:
    """One window's closure: the AUC, what the observed excess allows, and whether it passed."""

    window: str
    auc_data_vs_reference: float
    auc_error: float
    auc_allowed: float
    passed: bool
    #: the reference's mismodelling of each cut is measured and a nuisance of the window's cells
    #: (`analysis.stats.mismodelling`), so a failed closure does not drop the window
    covered: bool = False

    def to_dict(self) -> dict[str, str | float | bool]:
        """JSON-compatible record."""
        return asdict(self)


def reference_closure(
    separations: Sequence[Separation],
    windows: Sequence[Window],
    observed_sr: np.ndarray,
    background_sr: np.ndarray,
    covered: Sequence[bool] | None = None,
) -> tuple[ClosureOutcome, ...]:
    """Per window: does the reference close, given the largest excess the scan saw there?

    `observed_sr` and `background_sr` are the scan's (windows, efficiencies) signal-region
    counts and background predictions (NaN where a cell has no model: no excess); `covered`
    per window whether its mismodelling is a measured nuisance.
    """
    out = []
    covered = [False] * len(windows) if covered is None else covered
    for w, (sep, window) in enumerate(zip(separations, windows, strict=True)):
        excess = np.nan_to_num(observed_sr[w] - background_sr[w], nan=0.0)
        fraction = float(np.clip(excess.max(), 0.0, None) / sep.n_data)
        allowed = 0.5 + 0.5 * fraction + CLOSURE_SIGMAS * sep.error
        passed = sep.auc <= allowed
        out.append(ClosureOutcome(window.name, sep.auc, sep.error, allowed, passed, covered[w]))
    return tuple(out)
