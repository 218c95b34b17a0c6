"""Conditional generative models: one interface for flows, flow matching, diffusion and GANs.

The package loads lazily (PEP 562): `import generative.fileio` or `generative.preprocessing`
does not import torch or nflows; a model class is imported when it is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module that defines it
_EXPORTS = {
    "MODELS": "generative.base",
    "DENSITY_MODELS": "generative.registry",
    "DensityModel": "generative.base",
    "make_model": "generative.base",
    "Diffusion": "generative.diffusion",
    "FlowMatching": "generative.flow_matching",
    "MAF": "generative.flows",
    "CouplingFlow": "generative.coupling",
    "GAN": "generative.gan",
    "Logit": "generative.preprocessing",
    "MinMaxScaler": "generative.preprocessing",
    "Pipeline": "generative.preprocessing",
    "Standardizer": "generative.preprocessing",
    "Step": "generative.preprocessing",
    "make_preprocessing": "generative.preprocessing",
    "History": "generative.training",
    "TrainingConfig": "generative.settings",
    "train": "generative.training",
    "VAE": "generative.vae",
    "NotFittedError": "generative.validation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'generative' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    if name == "MODELS":
        # the registry is complete only once every built-in model is imported
        module.load_builtin_models()
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
