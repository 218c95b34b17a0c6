"""Anomaly detectors for resonance searches, one interface, scored out-of-fold.

Every detector is fitted on one search window, ``fit(X, mjj, in_sr)``; its outcome is one
record, ``result_`` (per-event scores, which are honest, and its background reference), and it
scores new events with the average of its fold models (``score_samples``).

Importing the package loads neither torch nor the generative models: the names below resolve
to their modules on first use, and ``DETECTORS`` lists the detectors without importing them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anomaly.base import AnomalyDetector

#: where each public name lives (imported on first access, PEP 562)
_EXPORTS = {
    "ANODE": "anomaly.anode",
    "Autoencoder": "anomaly.autoencoder",
    "AnomalyDetector": "anomaly.base",
    "ClassifierDetector": "anomaly.base",
    "ReferenceDetector": "anomaly.base",
    "CATHODE": "anomaly.cathode",
    "FAST_MAF": "anomaly.cathode",
    "CLASSIFIERS": "anomaly.classifiers",
    "HGBEnsemble": "anomaly.classifiers",
    "MLPEnsemble": "anomaly.classifiers",
    "make_classifier": "anomaly.classifiers",
    "CWoLa": "anomaly.cwola",
    "WindowEvents": "anomaly.events",
    "Idealized": "anomaly.idealized",
    "LaCATHODE": "anomaly.lacathode",
    "OutOfFold": "anomaly.kfold",
    "RANODE": "anomaly.ranode",
    "fold_assignment": "anomaly.kfold",
    "out_of_fold": "anomaly.kfold",
    "ControlSample": "anomaly.results",
    "DetectorResult": "anomaly.results",
    "Reference": "anomaly.results",
    "ReferenceSample": "anomaly.results",
    "Supervised": "anomaly.supervised",
}


class DetectorRegistry(Mapping[str, "type[AnomalyDetector]"]):
    """Detector classes by short name; a class is imported only when it is looked up."""

    def __init__(self, classes: Mapping[str, str]) -> None:
        self._classes = dict(classes)

    def __getitem__(self, name: str) -> type[AnomalyDetector]:
        module, cls = self.location(name)
        return getattr(importlib.import_module(module), cls)

    def location(self, name: str) -> tuple[str, str]:
        """(module, class name) of a detector, without importing it."""
        module, _, cls = self._classes[name].rpartition(".")
        return module, cls

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


#: detectors by name, e.g. ``make_detector("cathode", classifier="mlp")``; ``list(DETECTORS)``
#: is the list of method names a configuration may use
DETECTORS = DetectorRegistry(
    {
        "cathode": "anomaly.cathode.CATHODE",
        "anode": "anomaly.anode.ANODE",
        "cwola": "anomaly.cwola.CWoLa",
        "idealized": "anomaly.idealized.Idealized",
        "supervised": "anomaly.supervised.Supervised",
        "autoencoder": "anomaly.autoencoder.Autoencoder",
        "lacathode": "anomaly.lacathode.LaCATHODE",
        "ranode": "anomaly.ranode.RANODE",
    }
)


def make_detector(name: str, **params: object) -> AnomalyDetector:
    """Construct a detector by its short name."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose from {sorted(DETECTORS)}")
    return DETECTORS[name](**params)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'anomaly' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = ["DETECTORS", "DetectorRegistry", "make_detector", *sorted(_EXPORTS)]
