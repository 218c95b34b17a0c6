"""Search configurations small enough for unit tests (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from analysis.data import make_toy

FAST_HGB = {
    "classifier": "hgb",
    "classifier_params": {"n_models": 2, "max_iter": 40},
    "n_folds": 3,
}
FAST_CATHODE = {
    **FAST_HGB,
    "density_params": {
        "n_transforms": 2,
        "hidden_features": 16,
        "verbose": False,
        "training": {"epochs": 3, "batch_size": 1024, "learning_rate": 3e-3},
    },
    "oversampling": 2.0,
}


def tiny(tmp_path, name="run", **overrides) -> dict:
    """A search small enough for a unit test: 60k toy events, 2 windows, 20 pseudo-experiments."""
    raw = {
        "data": {"n_background": 60_000, "injection": {"n_signal": 600}},
        "windows": {"low": 3.3, "high": 3.9, "width": 0.4, "step": 0.2, "sideband_width": 0.4},
        "methods": [{"name": "cwola", "options": FAST_HGB}],
        "stats": {"efficiencies": [1.0, 0.1], "n_pseudo": 20},
        "executor": {"kind": "inprocess"},
        "output": str(tmp_path / name),
        "seed": 3,
    }
    for key, value in overrides.items():
        raw[key] = value
    return raw


def write_config(tmp_path: Path, raw: dict) -> list[str]:
    """Write `raw` as the YAML config of a search; the command line that runs it."""
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(raw))
    return ["run", str(path)]


def toy_lhco(n: int = 4_000, seed: int = 0) -> pd.DataFrame:
    """Toy background events in the LHCO R&D layout."""
    return make_toy(n, random_state=seed)


def lhco_search(tmp_path: Path, paths: list[Path], **data) -> dict:
    """A tiny search of LHCO-layout files, no injection, no pseudo-experiments."""
    raw = tiny(tmp_path, stats={"efficiencies": [1.0, 0.1], "n_pseudo": 0})
    raw["data"] = {
        "source": "lhco",
        "paths": [str(p) for p in paths],
        "injection": {"n_signal": 0},
        **data,
    }
    return raw


def lhco_files(tmp_path: Path, tables: dict[str, pd.DataFrame], **data) -> list[str]:
    """Write the tables (or raw bytes) as files and a search of them; its command line."""
    paths = []
    for name, table in tables.items():
        path = tmp_path / name
        if isinstance(table, bytes):
            path.write_bytes(table)
        else:
            table.to_hdf(path, key="df", format="fixed")
        paths.append(path)
    return write_config(tmp_path, lhco_search(tmp_path, paths, **data))
