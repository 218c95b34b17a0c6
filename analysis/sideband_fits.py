"""The sideband fit a comparison's density methods share: its checkpoint keys, kept or made.

The density methods of one group (`analysis.units.sideband_groups`) share one sideband fit per
(injection, seed). Its cost is stored once (`.../sideband/<method>`) and the fit itself beside
it (`.../sideband/<method>_model`, the bytes of `SidebandFit.to_bytes`), so a set interrupted
after the fit resumes its remaining methods without fitting it again.
"""

from __future__ import annotations

import logging

import numpy as np

from analysis.config import SearchConfig
from analysis.store import CorruptCheckpointError, ResultStore
from analysis.units import DetectorUnit, fit_sideband_unit, method_labels, sideband_groups
from anomaly import DETECTORS
from anomaly.sideband import SidebandDensity, SidebandFit
from generative.estimator import CorruptFileError

__all__ = ["is_density", "shared_sideband", "sideband_fit_key", "sideband_key"]

log = logging.getLogger(__name__)


def is_density(method: str) -> bool:
    """Whether the detector fits a sideband density (and can share it)."""
    return issubclass(DETECTORS[method], SidebandDensity)


def sideband_key(injection: int, seed: int, label: str) -> str:
    """Checkpoint key of the cost of a sideband fit shared from the method `label` on."""
    return f"compare/inj{injection}/seed{seed}/sideband/{label}"


def _model_key(key: str) -> str:
    """Checkpoint key of the kept sideband fit itself (its arrays hold `SidebandFit.to_bytes`)."""
    return f"{key}_model"


def sideband_fit_key(config: SearchConfig, injection: int, seed: int, label: str) -> str:
    """Checkpoint key under which a comparison of `config` keeps the sideband fit of method
    `label` (a density method's label) at (injection, seed), shared by its density group."""
    methods = config.compare.methods
    labels = method_labels(methods)
    if label not in labels or not is_density(methods[labels.index(label)].name):
        raise ValueError(f"{label!r} is not a density method of this comparison: {labels}")
    group = next(g for g in sideband_groups(methods) if labels.index(label) in g)
    return _model_key(sideband_key(injection, seed, labels[group[0]]))


def shared_sideband(
    store: ResultStore, key: str, unit: DetectorUnit, keys: tuple[str, ...]
) -> SidebandFit:
    """The group's sideband fit: the one an interrupted run of the set kept, or a new one."""
    model_key = _model_key(key)
    if store.has(model_key):
        try:
            data = store.load_arrays(model_key)["fit"].tobytes()
            kept = SidebandFit.from_bytes(data, source=f"checkpoint {model_key}")
            log.info("%s: resumed with the sideband fit an earlier run kept", key)
            return kept
        except (CorruptCheckpointError, CorruptFileError, KeyError) as err:
            log.warning("%s; the sideband fit is made again", err)
    shared = fit_sideband_unit(unit)
    labels = [k.rsplit("/", 1)[-1] for k in keys]
    cost = {"seconds": shared.seconds, "cpu_seconds": shared.cpu_seconds, "methods": labels}
    # The cost first: a kept fit always has its cost record.
    store.save_json(key, cost)
    store.save_arrays(model_key, fit=np.frombuffer(shared.to_bytes(), dtype=np.uint8))
    return shared
