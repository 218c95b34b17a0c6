"""Importing the light parts of the packages loads neither torch nor nflows."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "nflows")


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(out.stdout.split())
    return [name for name in HEAVY if name in modules]


@pytest.mark.parametrize(
    "statement",
    [
        "import analysis.stats",
        "import generative",
        "import generative.fileio",
        "import generative.preprocessing",
        "from generative import TrainingConfig",
        "from generative import DENSITY_MODELS; print(list(DENSITY_MODELS))",
    ],
)
def test_import_loads_no_torch(statement):
    assert _loaded_after(statement) == []


def test_a_model_class_still_loads_on_first_use():
    assert _loaded_after("from generative import MAF") == list(HEAVY)


def test_the_lazy_names_are_the_registered_models():
    from generative import DENSITY_MODELS, MODELS

    assert set(DENSITY_MODELS) <= set(MODELS)
    for name in DENSITY_MODELS:
        assert MODELS[name] is DENSITY_MODELS[name]
        assert DENSITY_MODELS[name].name == name
