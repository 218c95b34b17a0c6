"""ANODE (arXiv:2001.04990): the ratio of a signal-region density to the interpolated background.

One conditional density model p_SB(x | mjj) learns the sidebands and is evaluated (interpolated)
at the signal-region masses; per fold, a second model p_SR(x | mjj) learns the SR data of the
other folds. The score is log p_SR(x | mjj) - log p_SB(x | mjj), computed in log space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from anomaly.base import SEEN_BY_ALL, AnomalyDetector, WindowEvents
from anomaly.cathode import make_density_model
from anomaly.sideband import SidebandDensity, SidebandFit, sideband_seeds
from generative.base import DensityModel

__all__ = ["ANODE", "DensityRatioFold", "log_density_ratio"]


def log_density_ratio(log_p_sr: np.ndarray, log_p_sb: np.ndarray, floor: float) -> np.ndarray:
    """log p_SR - log p_SB with each log-density floored, so -inf never meets -inf.

    A density model returns -inf outside the support its preprocessing was fitted on; flooring
    turns "outside the SB support only" into a large positive score, "outside the SR support
    only" into a large negative one and "outside both" into no evidence (0). NaN means a broken
    model and raises.
    """
    for name, lp in (("signal-region", log_p_sr), ("sideband", log_p_sb)):
        n_nan = int(np.isnan(lp).sum())
        if n_nan:
            raise ValueError(f"the {name} density model returned NaN for {n_nan} events")
    return np.maximum(log_p_sr, floor) - np.maximum(log_p_sb, floor)


@dataclass(frozen=True)
class DensityRatioFold:
    """A fold model scoring events by log p_SR(x | mjj) - log p_SB(x | mjj)."""

    signal_region: DensityModel
    sideband: DensityModel
    floor: float

    def __call__(self, X: np.ndarray, mjj: np.ndarray | None) -> np.ndarray:
        """Floored log-density ratio of each event at its mass."""
        if mjj is None:
            raise ValueError("ANODE needs the events' mjj to evaluate its conditional densities")
        context = mjj[:, None]
        return log_density_ratio(
            self.signal_region.log_prob(X, context), self.sideband.log_prob(X, context), self.floor
        )


class ANODE(SidebandDensity, AnomalyDetector):
    """Anomaly detection with density estimation: a conditional density ratio.

    `density_model`/`density_params` configure both models (defaults as in CATHODE);
    `log_density_floor` is the smallest log-density an event can get (see `log_density_ratio`).
    The sideband model is fitted as CATHODE's (a validation share of the sidebands held out; the
    same model for the same `random_state`): `sideband_fit_`, its model `sideband_model_`;
    `sideband_fit` (an `anomaly.sideband.SidebandFit` of this window, e.g. a CATHODE's
    `fit_sideband`) is used instead of fitting it. `score_samples` needs `mjj`.
    """

    needs_mjj = True

    def __init__(
        self,
        *,
        density_model: str | DensityModel = "maf",
        density_params: dict[str, Any] | None = None,
        sideband_fit: SidebandFit | None = None,
        log_density_floor: float = -100.0,
        n_folds: int = 5,
        random_state: int | None = None,
    ) -> None:
        super().__init__(n_folds=n_folds, random_state=random_state)
        self.density_model = density_model
        self.density_params = density_params
        self.sideband_fit = sideband_fit
        self.log_density_floor = log_density_floor

    def _model(self, seed: np.random.SeedSequence) -> DensityModel:
        model = make_density_model(self.density_model, self.density_params, seed)
        if not model.has_log_prob:
            raise ValueError(f"ANODE needs a density model with log_prob; {model!r} has none")
        return model

    def _prepare(self, window: WindowEvents, seed: np.random.SeedSequence) -> None:
        self._model(seed)  # refuses a model without log_prob before a fit is spent on it
        self.sideband_fit_ = self._sideband(window, *sideband_seeds(seed))

    @property
    def sideband_model_(self) -> DensityModel:
        """The density model fitted on the sidebands."""
        return self.sideband_fit_.model

    def _outside_folds(self, window: WindowEvents) -> np.ndarray:
        # Every fold shares the sideband model, which trained on most sideband rows.
        return np.full(int((~window.in_sr).sum()), SEEN_BY_ALL)

    def _fit_fold(
        self, window: WindowEvents, train: np.ndarray, fold: int, seed: np.random.SeedSequence
    ) -> DensityRatioFold:
        model = self._model(seed).fit(window.X_sr[train], window.mjj_sr[train][:, None])
        return DensityRatioFold(model, self.sideband_model_, self.log_density_floor)
