"""A method's options checked against the constructors they reach, before any data are read.

The options of a configured method go to its detector's constructor; ``classifier_params`` to the
named classifier's, ``density_params`` to the named density model's and its ``training`` entry to
the training settings. A misspelt key would otherwise surface as a TypeError deep inside a run.

The constructors are read from their source files (`ast`), not imported: checking a
configuration then loads neither torch nor scikit-learn and answers at once.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["check_method_options"]

#: set by the search itself (one child seed per unit), never by a method's options
_RESERVED = ("random_state",)


#: packages whose classes are read from source; a base class from elsewhere ends the walk
_OURS = ("analysis", "anomaly", "generative")
#: the default of a parameter that is not a literal (an object built when the module loads)
NOT_LITERAL = object()


@cache
def _module(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"cannot find the source of module {module}")
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)


def _literal(node: ast.expr | None) -> object:
    try:
        return ast.literal_eval(node) if node is not None else NOT_LITERAL
    except ValueError:
        return NOT_LITERAL


def _names(tree: ast.Module, module: str) -> dict[str, tuple[str, str]]:
    """Where each class name a module defines or imports lives: (module, class name)."""
    names = {n.name: (module, n.name) for n in tree.body if isinstance(n, ast.ClassDef)}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.update({a.asname or a.name: (node.module, a.name) for a in node.names})
    return names


def constructor_parameters(module: str, name: str) -> dict[str, object]:
    """Keyword parameters of class `name`'s constructor with their literal defaults.

    Read from the source of `module`, following ``**kwargs`` up the class's bases as far as
    they are classes of this project.
    """
    tree = _module(module)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    init = next(
        (f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None
    )
    found: dict[str, object] = {}
    if init is not None:
        args = init.args
        positional = args.posonlyargs + args.args
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        for arg, default in zip(positional, defaults, strict=True):
            if arg.arg != "self":
                found[arg.arg] = _literal(default)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            found[arg.arg] = _literal(default)
    if init is None or init.args.kwarg is not None:
        names = _names(tree, module)
        for base in cls.bases:
            where = names.get(base.id) if isinstance(base, ast.Name) else None
            if where is not None and where[0].split(".")[0] in _OURS:
                for key, default in constructor_parameters(*where).items():
                    found.setdefault(key, default)
    return found


def _classifiers() -> dict[str, tuple[str, str]]:
    """The classifier registry (`anomaly.classifiers.CLASSIFIERS`) read from its source."""
    module = "anomaly.classifiers"
    tree = _module(module)
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "CLASSIFIERS":
            names = _names(tree, module)
            return {
                ast.literal_eval(k): names[v.id]
                for k, v in zip(node.value.keys, node.value.values, strict=True)
            }
    raise ValueError(f"{module} defines no CLASSIFIERS")


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


def method_takes(name: str, key: str) -> bool:
    """Whether detector `name`'s constructor takes the option `key` (False for unknown names)."""
    from anomaly import DETECTORS

    # the names only: `name in DETECTORS` would look the class up, importing its module
    known = name in set(DETECTORS)
    return known and key in constructor_parameters(*DETECTORS.location(name))


def check_method_options(name: str, options: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first key of `options` that method `name` cannot take."""
    from anomaly import DETECTORS

    reserved = [k for k in _RESERVED if k in options]
    if reserved:
        raise ValueError(f"options.{reserved[0]} is set by the search's seed, not by an option")
    params = constructor_parameters(*DETECTORS.location(name))
    _unknown(options, params, "options", name)

    def chosen(key: str) -> Any:
        return options.get(key, params.get(key))

    if options.get("classifier_params") is not None and isinstance(chosen("classifier"), str):
        classifiers = _classifiers()
        classifier = chosen("classifier")
        if classifier not in classifiers:
            raise ValueError(f"options.classifier must be one of {sorted(classifiers)}")
        where = "options.classifier_params"
        given = _mapping(options["classifier_params"], where)
        known = constructor_parameters(*classifiers[classifier])
        _unknown(given, known, where, f"classifier {classifier!r}")
    if options.get("density_params") is not None and isinstance(chosen("density_model"), str):
        _check_density(chosen("density_model"), options["density_params"])


def _check_density(model: str, density_params: Any) -> None:
    from generative.registry import BUILTIN_MODELS
    from generative.settings import TrainingConfig

    if model not in BUILTIN_MODELS:
        raise ValueError(f"options.density_model must be one of {sorted(BUILTIN_MODELS)}")
    where = "options.density_params"
    given = _mapping(density_params, where)
    module, _, cls = BUILTIN_MODELS[model].partition(":")
    _unknown(given, constructor_parameters(module, cls), where, f"density model {model!r}")
    training = given.get("training")
    if isinstance(training, Mapping):
        fields = {f.name: f for f in dataclasses.fields(TrainingConfig)}
        _unknown(training, fields, f"{where}.training", "the training settings")
        try:
            TrainingConfig(**training)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}.training: {err}") from None
