"""Method options checked against constructors read from source: the same as the classes say."""

from __future__ import annotations

import inspect

import pytest

from analysis.options import NOT_LITERAL, _classifiers, constructor_parameters
from anomaly import CLASSIFIERS, DETECTORS
from generative.registry import BUILTIN_MODELS, DENSITY_MODELS


def runtime_parameters(cls: type) -> dict[str, object]:
    """Keyword parameters of `cls` as Python sees them: ``**kwargs`` followed up the MRO."""
    found: dict[str, object] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters
        for name, p in params.items():
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                found.setdefault(name, p.default)
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    return found


def assert_same(static: dict[str, object], runtime: dict[str, object]) -> None:
    assert static.keys() == runtime.keys()
    for name, default in static.items():
        if default is not NOT_LITERAL:
            assert default == runtime[name], name


@pytest.mark.parametrize("name", list(DETECTORS))
def test_detector_options_read_from_source_are_its_constructors(name):
    assert_same(
        constructor_parameters(*DETECTORS.location(name)), runtime_parameters(DETECTORS[name])
    )


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifier_options_read_from_source_are_its_constructors(name):
    assert set(_classifiers()) == set(CLASSIFIERS)
    static = constructor_parameters(*_classifiers()[name])
    assert_same(static, runtime_parameters(CLASSIFIERS[name]))


@pytest.mark.parametrize("name", list(BUILTIN_MODELS))
def test_density_model_options_read_from_source_are_its_constructors(name):
    module, _, cls = BUILTIN_MODELS[name].partition(":")
    assert_same(constructor_parameters(module, cls), runtime_parameters(DENSITY_MODELS[name]))
