"""One call that judges generated showers against reference showers as the CaloChallenge does.

`evaluate_showers` computes the high-level features of both samples (after the readout threshold),
their separation powers, the low- and high-level classifier tests and the Frechet and kernel
physics distances, and returns them as one `ShowerEvaluation` record whose `to_dict` is what the
command line and the benchmark write as JSON. `write_evaluation_plots` draws the matching figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generative.calo.features import (
    DEFAULT_THRESHOLD_MEV,
    high_level_features,
    high_level_inputs,
    low_level_inputs,
)
from generative.calo.geometry import CaloGeometry
from generative.calo.io import ShowerData
from generative.calo.metrics import (
    ClassifierConfig,
    ClassifierTestResult,
    DistanceResult,
    challenge_separation_powers,
    classifier_test,
    frechet_physics_distance,
    kernel_physics_distance,
    separation_powers,
)
from generative.calo.plots import (
    plot_average_showers,
    plot_separation_powers,
    save_figure,
    write_feature_plots,
)

__all__ = ["ShowerEvaluation", "evaluate_showers", "write_evaluation_plots"]

#: callback told the name of each stage as it starts (a progress bar, a log line)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ShowerEvaluation:
    """Metrics of generated against reference showers (see `evaluate_showers`).

    `separation_powers` bin every feature between the pooled quantiles (robust for any data);
    `challenge_separation_powers` use the fixed binnings of the challenge's ``evaluate.py``
    (comparable with published values). FPD and KPD are on the challenge's high-level inputs
    (`high_level_inputs`, as its ``evaluate.py`` passes them to jetnet) scaled by their maxima;
    the FPD batch sizes (`fpd_samples`) shrink to the smaller sample when it has fewer than 50,000
    events, so FPD values from small samples are biased upwards.
    """

    n_reference: int
    n_generated: int
    threshold_mev: float
    separation_powers: dict[str, float]
    challenge_separation_powers: dict[str, float]
    classifier_low_level: ClassifierTestResult | None
    classifier_high_level: ClassifierTestResult | None
    fpd: DistanceResult
    kpd: DistanceResult
    fpd_samples: tuple[int, int]
    kpd_batch_size: int

    @property
    def mean_separation_power(self) -> float:
        """Mean separation power over the high-level features."""
        return float(np.mean(list(self.separation_powers.values())))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (FPD and KPD also given x 1e3, as the challenge tables quote them)."""
        out = asdict(self)
        out["fpd_samples"] = list(self.fpd_samples)
        out["mean_separation_power"] = self.mean_separation_power
        out["max_separation_power"] = {
            "feature": max(self.separation_powers, key=self.separation_powers.__getitem__),
            "value": max(self.separation_powers.values()),
        }
        out["fpd_x1e3"] = {"value": 1e3 * self.fpd.value, "error": 1e3 * self.fpd.error}
        out["kpd_x1e3"] = {"value": 1e3 * self.kpd.value, "error": 1e3 * self.kpd.error}
        return out


def _check_pair(reference: ShowerData, generated: ShowerData, geometry: CaloGeometry) -> None:
    for name, data in (("reference", reference), ("generated", generated)):
        if not isinstance(data, ShowerData):
            raise TypeError(f"{name} showers must be a ShowerData, got {type(data).__name__}")
        try:
            data.check_geometry(geometry)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        if len(data) < 2:
            raise ValueError(f"{name}: need at least 2 showers to evaluate, got {len(data)}")


def evaluate_showers(
    reference: ShowerData,
    generated: ShowerData,
    geometry: CaloGeometry,
    *,
    threshold: float = DEFAULT_THRESHOLD_MEV,
    classifier: bool = True,
    classifier_config: ClassifierConfig | None = None,
    random_state: int = 0,
    progress: Progress | None = None,
) -> ShowerEvaluation:
    """Separation powers, classifier AUCs (low and high level) and FPD/KPD of two samples.

    Voxels below `threshold` MeV are zeroed first, as in the official evaluation. With
    `classifier=False` the (slowest) classifier tests are skipped and reported as None.
    """
    _check_pair(reference, generated, geometry)
    step = progress or (lambda stage: None)
    step("high-level features")
    ref_features = high_level_features(reference, geometry, threshold=threshold)
    gen_features = high_level_features(generated, geometry, threshold=threshold)
    step("separation powers")
    separation = separation_powers(ref_features, gen_features)
    challenge = challenge_separation_powers(reference, generated, geometry, threshold=threshold)
    low = high = None
    if classifier:
        step("classifier test (low level)")
        low = classifier_test(
            low_level_inputs(reference, threshold=threshold),
            low_level_inputs(generated, threshold=threshold),
            config=classifier_config,
            random_state=random_state,
        )
        step("classifier test (high level)")
        high = classifier_test(
            high_level_inputs(ref_features, reference.energies),
            high_level_inputs(gen_features, generated.energies),
            config=classifier_config,
            random_state=random_state,
        )
    ref_x = high_level_inputs(ref_features, reference.energies)
    gen_x = high_level_inputs(gen_features, generated.energies)
    n = min(len(ref_x), len(gen_x))
    max_samples = min(50_000, n)
    min_samples = min(20_000, max(2, max_samples // 2))
    step("Frechet physics distance")
    fpd = frechet_physics_distance(
        ref_x,
        gen_x,
        min_samples=min_samples,
        max_samples=max_samples,
        random_state=random_state,
    )
    step("kernel physics distance")
    kpd_batch = min(5_000, n)
    kpd = kernel_physics_distance(ref_x, gen_x, batch_size=kpd_batch, random_state=random_state)
    return ShowerEvaluation(
        n_reference=len(reference),
        n_generated=len(generated),
        threshold_mev=float(threshold),
        separation_powers={str(k): float(v) for k, v in separation.items()},
        challenge_separation_powers=challenge,
        classifier_low_level=low,
        classifier_high_level=high,
        fpd=fpd,
        kpd=kpd,
        fpd_samples=(min_samples, max_samples),
        kpd_batch_size=kpd_batch,
    )


def write_evaluation_plots(
    reference: ShowerData,
    generated: ShowerData,
    geometry: CaloGeometry,
    directory: str | Path,
    *,
    threshold: float = DEFAULT_THRESHOLD_MEV,
    labels: tuple[str, str] = ("reference", "generated"),
    fmt: str = "png",
) -> dict[str, Path]:
    """Feature histograms, average showers and separation powers as image files in `directory`.

    Returns the written paths by name: one per high-level feature, ``average_showers`` and
    ``separation_powers``.
    """
    _check_pair(reference, generated, geometry)
    directory = Path(directory)
    ref_features = high_level_features(reference, geometry, threshold=threshold)
    gen_features = high_level_features(generated, geometry, threshold=threshold)
    written = write_feature_plots(ref_features, gen_features, directory / "features", fmt=fmt)
    written = {str(k): v for k, v in written.items()}
    average = plot_average_showers(
        geometry,
        {labels[0]: reference.showers, labels[1]: generated.showers},
    )
    written["average_showers"] = save_figure(average, directory / f"average_showers.{fmt}")
    separation = separation_powers(ref_features, gen_features).sort_values(ascending=False)
    written["separation_powers"] = save_figure(
        plot_separation_powers(separation), directory / f"separation_powers.{fmt}"
    )
    return written
