"""The built-in density models by name, resolvable without importing torch until a class is used.

`DENSITY_MODELS` is a read-only mapping name -> class: its names (``list(DENSITY_MODELS)``, a
config check) cost nothing; looking a name up imports that model's module. `generative.MODELS`
is the full registry, user models included, once the built-ins are imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

__all__ = ["BUILTIN_MODELS", "DENSITY_MODELS"]

#: name -> "module:class" of every built-in density model
BUILTIN_MODELS = {
    "maf": "generative.flows:MAF",
    "coupling": "generative.coupling:CouplingFlow",
    "flow_matching": "generative.flow_matching:FlowMatching",
    "diffusion": "generative.diffusion:Diffusion",
    "gan": "generative.gan:GAN",
    "vae": "generative.vae:VAE",
}


class _LazyModels(Mapping):
    """Names known up front, classes imported on lookup."""

    def __getitem__(self, name: str) -> type:
        try:
            module, _, qualname = BUILTIN_MODELS[name].partition(":")
        except KeyError:
            raise KeyError(
                f"unknown density model {name!r}; choose from {sorted(BUILTIN_MODELS)}"
            ) from None
        return getattr(importlib.import_module(module), qualname)

    def __iter__(self) -> Iterator[str]:
        return iter(BUILTIN_MODELS)

    def __len__(self) -> int:
        return len(BUILTIN_MODELS)

    def __repr__(self) -> str:
        return f"DENSITY_MODELS({sorted(BUILTIN_MODELS)})"


DENSITY_MODELS: Mapping[str, type] = _LazyModels()
