"""Anomaly detectors for resonance searches, one interface, scored out-of-fold.

Every detector is fitted on one search window, ``fit(X, mjj, in_sr)``, scores each
signal-region event with a model that never saw it (``oof_scores_``) and scores new events with
the average of its fold models (``score``).
"""

from anomaly.anode import ANODE
from anomaly.autoencoder import Autoencoder
from anomaly.base import AnomalyDetector, ClassifierDetector, ReferenceDetector, WindowEvents
from anomaly.cathode import CATHODE, FAST_MAF
from anomaly.classifiers import CLASSIFIERS, HGBEnsemble, MLPEnsemble, make_classifier
from anomaly.cwola import CWoLa
from anomaly.idealized import Idealized
from anomaly.kfold import OutOfFold, fold_assignment, out_of_fold
from anomaly.supervised import Supervised

#: detectors by name, e.g. ``make_detector("cathode", classifier="mlp")``
DETECTORS: dict[str, type[AnomalyDetector]] = {
    "cathode": CATHODE,
    "anode": ANODE,
    "cwola": CWoLa,
    "idealized": Idealized,
    "supervised": Supervised,
    "autoencoder": Autoencoder,
}


def make_detector(name: str, **params: object) -> AnomalyDetector:
    """Construct a detector by its short name."""
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; choose from {sorted(DETECTORS)}") from None
    return cls(**params)


__all__ = [
    "ANODE",
    "CATHODE",
    "CLASSIFIERS",
    "DETECTORS",
    "FAST_MAF",
    "AnomalyDetector",
    "Autoencoder",
    "CWoLa",
    "ClassifierDetector",
    "HGBEnsemble",
    "Idealized",
    "MLPEnsemble",
    "OutOfFold",
    "ReferenceDetector",
    "Supervised",
    "WindowEvents",
    "fold_assignment",
    "make_classifier",
    "make_detector",
    "out_of_fold",
]
