"""CATHODE (arXiv:2109.00546): classify signal-region data against a sampled background template.

A conditional density model p(x | mjj) learns the background in the sidebands (its preprocessing
is fitted there too); the mjj distribution of the signal region is modelled by a Gaussian KDE and
sampled; the model interpolated into the SR draws an oversampled template at those masses; the
classifier SR data vs template then approximates the likelihood ratio (signal + background) /
background. Template events are fresh samples, never scored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import gaussian_kde
from sklearn.base import clone

from anomaly.base import ReferenceDetector, WindowEvents, seed_int, sideband_events
from anomaly.crossfit import fit_cross
from anomaly.events import MIN_SIDEBAND_EVENTS
from anomaly.results import ControlSample, Reference, ReferenceSample
from anomaly.sideband import SidebandDensity, SidebandFit
from anomaly.template_quality import (
    EfficiencyClosure,
    TwoSampleTest,
    efficiency_closure,
    two_sample_auc,
)
from generative.base import DensityModel, make_model
from generative.training import merge_settings

__all__ = [
    "CATHODE",
    "FAST_MAF",
    "Template",
    "make_density_model",
    "sample_mjj",
    "sample_valid",
    "sideband_events",
]

#: the default conditional flow, sized for a CPU: 6 rational-quadratic-spline MADE blocks of 64
#: units trained at batch 2048 (the paper: 15 affine blocks of 128 at batch 256 for 100 epochs,
#: hours per window). On the LHCO data the spline halves the affine flow's template mismodelling
#: at the same size (benchmarks/template_quality.py); more affine capacity or epochs do not.
FAST_MAF: dict[str, Any] = {
    "transform": "spline",
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

    For 'maf', `params` update `FAST_MAF`; a 'training' entry changes only the training fields
    it names (``{"training": {"epochs": 5}}`` keeps FAST_MAF's patience and batch size).
    """
    if isinstance(spec, str):
        defaults = FAST_MAF if spec == "maf" else {}
        params = merge_settings(defaults, params)
        return make_model(spec, **{**params, "random_state": seed_int(seed)})
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


def sample_valid(
    model: DensityModel,
    mjj: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """One valid event per mass (finite, inside [low, high]) and the number of invalid redraws.

    Invalid draws are redrawn at their own masses, so the template keeps the masses asked for.
    """
    out = np.empty((len(mjj), len(low)))
    todo = np.arange(len(mjj))
    invalid = 0
    for _ in range(_MAX_REDRAWS):
        # A few redraws are padded and shuffled: a model failing at fixed batch positions
        # must not trap a mass there.
        rows = (
            todo if len(todo) == len(mjj) else rng.permutation(np.resize(todo, max(16, len(todo))))
        )
        x = model.sample(mjj[rows, None], random_state=int(rng.integers(2**31 - 1)))
        ok = np.isfinite(x).all(axis=1) & (x >= low).all(axis=1) & (x <= high).all(axis=1)
        invalid += int((~ok).sum())
        rows, first = np.unique(rows[ok], return_index=True)
        out[rows] = x[ok][first]
        todo = np.setdiff1d(todo, rows)
        if not len(todo):
            return out, invalid
    raise RuntimeError(
        f"the density model produced {invalid} invalid events (non-finite or outside the "
        f"sideband range); {len(todo)} of {len(mjj)} masses got no valid event in "
        f"{_MAX_REDRAWS} rounds"
    )


@dataclass(frozen=True, eq=False)
class Template(ReferenceSample):
    """CATHODE's reference: events sampled from the sideband density model at SR masses."""

    density_model: DensityModel | None = None
    #: sampled events refused (non-finite or outside the sideband range) and redrawn
    n_invalid: int = 0
    #: held-out (validation) sideband data against the model's samples at the same masses
    sideband_test: TwoSampleTest | None = None
    #: a model fitted on the outer sidebands against the inner-sideband data next to the SR
    interpolation_test: TwoSampleTest | None = None
    #: the held-out sideband events and the model's samples at their masses (sideband test)
    sideband_data: np.ndarray | None = None
    sideband_model: np.ndarray | None = None
    sideband_mjj: np.ndarray | None = None


class CATHODE(SidebandDensity, ReferenceDetector):
    """Classifying anomalies through outer density estimation.

    Parameters: `density_model` (a registered name such as 'maf', 'flow_matching', or an
    unfitted `DensityModel`; the default is `FAST_MAF`), `density_params` (constructor arguments
    for a named model), `sideband_fit` (an `anomaly.sideband.SidebandFit` of this window with
    the same density settings, e.g. another density detector's `fit_sideband`, used instead of
    fitting the model; the fit used is `sideband_fit_`), `oversampling` (template events per SR
    event), `mjj_bandwidth` (the KDE bandwidth rule or factor, scipy's default when None),
    `sideband_test` (the two-sample test of the validation sidebands against the model),
    `interpolation_test` (refit on the outer
    sidebands and test in the inner ones, `inner_sideband_width` TeV either side of the SR, half
    the SR width when None; it doubles the density fits), `test_classifier_params` (of the
    tests' HGB), and the classifier settings of `ClassifierDetector`.

    The density model trains on the sidebands minus a random validation share (its training
    config's `validation_fraction`), which selects its best epoch and is the held-out data of
    the sideband test. With `cross_fit`, the detector is fitted twice, each time on the SR and
    a random half of the sidebands, and a sideband event is scored by the copy that did not
    learn it (`anomaly.crossfit`; the copies are `copies_`, the template and tests shown are the
    first copy's, the reference of `result_` both copies'): the selected sidebands are then
    independent of the template, as a fit of them (`background: fit`) needs. Template events
    that are non-finite or outside the per-feature range of
    the sideband data are redrawn at their masses and counted in `n_invalid_template_`. The
    template is `reference_sample_` (a `Template`; its events `reference_`, its masses
    `reference_mjj_`, its tests `template_tests_`), the fitted sideband model `density_model_`;
    `sideband_efficiency_` (an `EfficiencyClosure`) compares the pass fractions of the held-out
    sideband data and of the model's samples there at the cuts keeping 10%, 1% and 0.2% of the
    SR template: the template's mismodelling where no signal is expected. Their scores travel in
    `result_.reference.control` (an `anomaly.results.ControlSample`), from which a search
    measures the mismodelling at its own cuts.
    """

    calibrates_background = True

    def __init__(
        self,
        *,
        density_model: str | DensityModel = "maf",
        density_params: dict[str, Any] | None = None,
        sideband_fit: SidebandFit | None = None,
        oversampling: float = 4.0,
        mjj_bandwidth: str | float | None = None,
        sideband_test: bool = True,
        interpolation_test: bool = False,
        inner_sideband_width: float | None = None,
        test_classifier_params: dict[str, Any] | None = None,
        cross_fit: bool = False,
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
        self.sideband_fit = sideband_fit
        self.oversampling = oversampling
        self.mjj_bandwidth = mjj_bandwidth
        self.sideband_test = sideband_test
        self.interpolation_test = interpolation_test
        self.inner_sideband_width = inner_sideband_width
        self.test_classifier_params = test_classifier_params
        self.cross_fit = cross_fit

    @property
    def density_model_(self) -> DensityModel:
        """The density model fitted on the sidebands."""
        return self.reference_sample_.density_model

    @property
    def n_invalid_template_(self) -> int:
        """Sampled events refused as invalid and redrawn."""
        return self.reference_sample_.n_invalid

    @property
    def template_tests_(self) -> dict[str, TwoSampleTest]:
        """The template-quality tests that ran, by name ('sideband', 'interpolation')."""
        sample = self.reference_sample_
        tests = {"sideband": sample.sideband_test, "interpolation": sample.interpolation_test}
        return {name: test for name, test in tests.items() if test is not None}

    def fit(self, X: Any, mjj: Any, in_sr: Any, **extras: Any) -> CATHODE:
        """Fit as every detector (or cross-fitted), then measure `sideband_efficiency_`."""
        if self.cross_fit:
            return fit_cross(self, X, mjj, in_sr, **extras)
        super().fit(X, mjj, in_sr, **extras)
        self.sideband_efficiency_ = self._sideband_efficiency()
        return self

    def _sideband_efficiency(self) -> EfficiencyClosure | None:
        reference = self.result_.reference
        if reference.control is None:
            return None
        control = reference.control
        return efficiency_closure(reference.scores, control.data_scores, control.model_scores)

    def _external_reference(self, window: WindowEvents) -> Reference | None:
        reference = super()._external_reference(window)
        quality = {name: test.to_dict() for name, test in self.template_tests_.items()}
        # The template's mismodelling where no signal is expected: the held-out sideband data
        # and the model's samples at their masses, scored. No fold classifier trained on either
        # (they learn SR data against SR template only).
        sample, control = self.reference_sample_, None
        if sample.sideband_data is not None:
            control = ControlSample(
                self._average(sample.sideband_data, sample.sideband_mjj),
                self._average(sample.sideband_model, sample.sideband_mjj),
            )
        return dataclasses.replace(reference, quality=quality, control=control)

    def _two_sample(self, data: np.ndarray, model: np.ndarray, seed: np.random.SeedSequence):
        return two_sample_auc(
            data,
            model,
            classifier_params=self.test_classifier_params,
            n_folds=self.n_folds,
            random_state=seed_int(seed),
        )

    def _reference(self, window: WindowEvents, seed: np.random.SeedSequence) -> Template:
        if not self.oversampling > 0:
            raise ValueError(f"oversampling must be positive, got {self.oversampling}")
        sb = sideband_events(window)
        # The model and split seeds are those of `anomaly.sideband.sideband_seeds`.
        model_seed, sample_seed, split_seed, test_seed, interp_seed = seed.spawn(5)
        self.sideband_fit_ = self._sideband(window, model_seed, split_seed)
        model, held = self.sideband_fit_.model, self.sideband_fit_.held_out
        X_sb, mjj_sb = window.X[sb], window.mjj[sb]
        rng = np.random.default_rng(sample_seed)
        low, high = X_sb.min(axis=0), X_sb.max(axis=0)
        n = round(self.oversampling * window.in_sr.sum())
        masses = sample_mjj(window.mjj_sr, n, rng, self.mjj_bandwidth)
        X, invalid = sample_valid(model, masses, low, high, rng)
        sideband = closure = None
        if self.sideband_test and len(held):
            closure, _ = sample_valid(model, mjj_sb[held], low, high, rng)
            sideband = self._two_sample(X_sb[held], closure, test_seed)
        interpolation = None
        if self.interpolation_test:
            interpolation = self._interpolation(window, low, high, interp_seed)
        held_data, held_mjj = (X_sb[held], mjj_sb[held]) if closure is not None else (None, None)
        return Template(
            X, masses, model, invalid, sideband, interpolation, held_data, closure, held_mjj
        )

    def _interpolation(
        self, window: WindowEvents, low: np.ndarray, high: np.ndarray, seed: np.random.SeedSequence
    ) -> TwoSampleTest:
        """Fit on the outer sidebands, sample at the inner-sideband masses, test there."""
        sr_low, sr_high = window.mjj_sr.min(), window.mjj_sr.max()
        width = self.inner_sideband_width
        width = 0.5 * (sr_high - sr_low) if width is None else width
        if not width > 0:
            raise ValueError(f"inner_sideband_width must be positive, got {width}")
        sb = ~window.in_sr
        near = (window.mjj > sr_low - width) & (window.mjj < sr_high + width)
        inner, outer = sb & near, sb & ~near
        for name, mask in (("inner", inner), ("outer", outer)):
            if mask.sum() < MIN_SIDEBAND_EVENTS:
                raise ValueError(
                    f"the interpolation test needs {MIN_SIDEBAND_EVENTS} {name}-sideband events "
                    f"(inner: within {width:g} of the signal region), got {int(mask.sum())}"
                )
        model_seed, sample_seed, test_seed = seed.spawn(3)
        model = make_density_model(self.density_model, self.density_params, model_seed)
        model.fit(window.X[outer], window.mjj[outer, None])
        rng = np.random.default_rng(sample_seed)
        X, _ = sample_valid(model, window.mjj[inner], low, high, rng)
        return self._two_sample(window.X[inner], X, test_seed)
