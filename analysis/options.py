"""A method's options checked against the constructors they reach, before any data are read.

The options of a configured method go to its detector's constructor; ``classifier_params`` to the
named classifier's, ``density_params`` to the named density model's and its ``training`` entry to
the training settings. A misspelt key would otherwise surface as a TypeError deep inside a run.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

__all__ = ["check_method_options"]

#: set by the search itself (one child seed per unit), never by a method's options
_RESERVED = ("random_state",)


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    """Keyword parameters of `cls`'s constructor, following ``**kwargs`` up the class tree."""
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters
        found.update({n: p for n, p in params.items() if n != "self" and p.kind != p.VAR_KEYWORD})
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    return found


def _unknown(keys: Mapping[str, Any], known: Mapping[str, Any], where: str, what: str) -> None:
    bad = [k for k in keys if k not in known]
    if bad:
        raise ValueError(
            f"{where}.{bad[0]} is not an option of {what}; it takes {', '.join(sorted(known))}"
        )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a mapping of options, got {value!r}")
    return value


def check_method_options(name: str, options: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first key of `options` that method `name` cannot take."""
    from anomaly import DETECTORS

    reserved = [k for k in _RESERVED if k in options]
    if reserved:
        raise ValueError(f"options.{reserved[0]} is set by the search's seed, not by an option")
    params = _parameters(DETECTORS[name])
    _unknown(options, params, "options", name)

    def chosen(key: str) -> Any:
        return options.get(key, params[key].default if key in params else None)

    if options.get("classifier_params") is not None and isinstance(chosen("classifier"), str):
        from anomaly import CLASSIFIERS

        classifier = chosen("classifier")
        if classifier not in CLASSIFIERS:
            raise ValueError(f"options.classifier must be one of {sorted(CLASSIFIERS)}")
        where = "options.classifier_params"
        given = _mapping(options["classifier_params"], where)
        _unknown(given, _parameters(CLASSIFIERS[classifier]), where, f"classifier {classifier!r}")
    if options.get("density_params") is not None and isinstance(chosen("density_model"), str):
        _check_density(chosen("density_model"), options["density_params"])


def _check_density(model: str, density_params: Any) -> None:
    from generative import DENSITY_MODELS
    from generative.settings import TrainingConfig

    if model not in DENSITY_MODELS:
        raise ValueError(f"options.density_model must be one of {sorted(DENSITY_MODELS)}")
    where = "options.density_params"
    given = _mapping(density_params, where)
    _unknown(given, _parameters(DENSITY_MODELS[model]), where, f"density model {model!r}")
    training = given.get("training")
    if isinstance(training, Mapping):
        fields = {f.name: f for f in dataclasses.fields(TrainingConfig)}
        _unknown(training, fields, f"{where}.training", "the training settings")
        try:
            TrainingConfig(**training)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}.training: {err}") from None
