"""CATHODE (arXiv:2109.00546): classify signal-region data against a sampled background template.

A conditional density model p(x | mjj) learns the background in the sidebands (its preprocessing
is fitted there too); the mjj distribution of the signal region is modelled by a Gaussian KDE and
sampled; the model interpolated into the SR draws an oversampled template at those masses; the
classifier SR data vs template then approximates the likelihood ratio (signal + background) /
background. Template events are fresh samples, never scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import gaussian_kde
from sklearn.base import clone

from anomaly.base import ReferenceDetector, WindowEvents, seed_int, sideband_events
from anomaly.results import ReferenceSample
from generative.base import DensityModel, make_model

__all__ = [
    "CATHODE",
    "FAST_MAF",
    "Template",
    "make_density_model",
    "sample_mjj",
    "sideband_events",
]

#: the default conditional flow, sized for a CPU: 6 affine MADE blocks of 64 units trained at
#: batch 2048 (the paper: 15 blocks of 128 at batch 256 for 100 epochs, hours per window)
FAST_MAF: dict[str, Any] = {
    "transform": "affine",
    "n_transforms": 6,
    "hidden_features": 64,
    "training": {
        "epochs": 30,
        "batch_size": 2048,
        "learning_rate": 2e-3,
        "patience": 6,
        "lr_schedule": "cosine",
    },
    "verbose": False,
}

#: redraw rounds before a density model that keeps producing invalid events is given up on
_MAX_REDRAWS = 20


def make_density_model(
    spec: str | DensityModel, params: dict[str, Any] | None, seed: np.random.SeedSequence
) -> DensityModel:
    """A fresh, seeded density model from a registered name (+ params) or an unfitted instance.

    For 'maf', `params` update `FAST_MAF` (a 'training' entry replaces its training settings).
    """
    if isinstance(spec, str):
        defaults = FAST_MAF if spec == "maf" else {}
        return make_model(spec, **{**defaults, **(params or {}), "random_state": seed_int(seed)})
    if not isinstance(spec, DensityModel):
        raise TypeError(f"density_model must be a model name or a DensityModel, got {spec!r}")
    if params:
        raise ValueError("density_params apply to a density model given by name only")
    return clone(spec).set_params(random_state=seed_int(seed))


def sample_mjj(
    mjj_sr: np.ndarray, n: int, rng: np.random.Generator, bandwidth: str | float | None = None
) -> np.ndarray:
    """Draw `n` masses from a Gaussian KDE of the SR masses, truncated to the SR's range."""
    if len(np.unique(mjj_sr)) < 2:
        raise ValueError(f"the mjj KDE needs at least 2 distinct SR masses, got {len(mjj_sr)}")
    kde = gaussian_kde(mjj_sr, bw_method=bandwidth)
    lo, hi = mjj_sr.min(), mjj_sr.max()
    parts, have = [], 0
    # Redraw the kernel tails that leave the SR: the template must live where the data do.
    while have < n:
        draw = kde.resample(2 * (n - have) + 16, seed=rng)[0]
        draw = draw[(draw >= lo) & (draw <= hi)][: n - have]
        parts.append(draw)
        have += len(draw)
    return np.concatenate(parts)


@dataclass(frozen=True, eq=False)
class Template(ReferenceSample):
    """CATHODE's reference: events sampled from the sideband density model at SR masses."""

    density_model: DensityModel | None = None
    #: sampled events refused (non-finite or outside the sideband range) and redrawn
    n_invalid: int = 0


class CATHODE(ReferenceDetector):
    """Classifying anomalies through outer density estimation.

    Parameters: `density_model` (a registered name such as 'maf', 'flow_matching', or an
    unfitted `DensityModel`; the default is `FAST_MAF`), `density_params` (constructor arguments
    for a named model), `oversampling` (template events per SR event), `mjj_bandwidth` (the KDE
    bandwidth rule or factor, scipy's default when None), and the classifier settings of
    `ClassifierDetector`. Template events that are non-finite or outside the per-feature range of
    the sideband data are dropped, counted in `n_invalid_template_`, and redrawn. The template is
    `reference_sample_` (a `Template`; its events `reference_`, its masses `reference_mjj_`), the
    fitted sideband model `density_model_`.
    """

    def __init__(
        self,
        *,
        density_model: str | DensityModel = "maf",
        density_params: dict[str, Any] | None = None,
        oversampling: float = 4.0,
        mjj_bandwidth: str | float | None = None,
        classifier: str | Any = "hgb",
        classifier_params: dict[str, Any] | None = None,
        n_folds: int = 5,
        random_state: int | None = None,
    ) -> None:
        super().__init__(
            classifier=classifier,
            classifier_params=classifier_params,
            n_folds=n_folds,
            random_state=random_state,
        )
        self.density_model = density_model
        self.density_params = density_params
        self.oversampling = oversampling
        self.mjj_bandwidth = mjj_bandwidth

    @property
    def density_model_(self) -> DensityModel:
        """The density model fitted on the sidebands."""
        return self.reference_sample_.density_model

    @property
    def n_invalid_template_(self) -> int:
        """Sampled events refused as invalid and redrawn."""
        return self.reference_sample_.n_invalid

    def _reference(self, window: WindowEvents, seed: np.random.SeedSequence) -> Template:
        if not self.oversampling > 0:
            raise ValueError(f"oversampling must be positive, got {self.oversampling}")
        sb = sideband_events(window)
        model_seed, sample_seed = seed.spawn(2)
        model = make_density_model(self.density_model, self.density_params, model_seed)
        X_sb = window.X[sb]
        model.fit(X_sb, window.mjj[sb][:, None])
        rng = np.random.default_rng(sample_seed)
        n = round(self.oversampling * window.in_sr.sum())
        low, high = X_sb.min(axis=0), X_sb.max(axis=0)
        parts, masses, have, invalid = [], [], 0, 0
        drawn = 0
        for _ in range(_MAX_REDRAWS):
            # Over-draw by the invalid fraction seen so far, so a round rarely falls short.
            missing = n - have
            extra = int(np.ceil(missing * invalid / drawn * 1.5)) + 16 if invalid else 0
            m = sample_mjj(window.mjj_sr, missing + extra, rng, self.mjj_bandwidth)
            x = model.sample(m[:, None], random_state=int(rng.integers(2**31 - 1)))
            ok = np.isfinite(x).all(axis=1) & (x >= low).all(axis=1) & (x <= high).all(axis=1)
            drawn += len(x)
            invalid += int((~ok).sum())
            parts.append(x[ok][:missing])
            masses.append(m[ok][:missing])
            have += len(parts[-1])
            if have == n:
                break
        else:
            raise RuntimeError(
                f"the density model produced {invalid} invalid events (non-finite or outside the "
                f"sideband range) and only {have} of {n} valid ones in {_MAX_REDRAWS} rounds"
            )
        return Template(np.concatenate(parts), np.concatenate(masses), model, invalid)
