"""Small hand-made tables in the LHCO R&D layout shared by the data-layer tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.data import LHCO_COLUMNS


def _lhco_rows(rows: list[dict[str, float]]) -> pd.DataFrame:
    """An LHCO-layout table (GeV, float64) from per-row dicts; unspecified columns are benign."""
    defaults = {
        "pxj1": 1000.0,
        "pyj1": 0.0,
        "pzj1": 0.0,
        "mj1": 100.0,
        "tau1j1": 0.2,
        "tau2j1": 0.1,
        "tau3j1": 0.05,
        "pxj2": -1000.0,
        "pyj2": 0.0,
        "pzj2": 0.0,
        "mj2": 300.0,
        "tau1j2": 0.4,
        "tau2j2": 0.1,
        "tau3j2": 0.08,
        "label": 0.0,
    }
    return pd.DataFrame([{**defaults, **row} for row in rows], columns=list(LHCO_COLUMNS))


@pytest.fixture
def lhco_rows():
    """Builder of hand-made LHCO tables: ``lhco_rows([{"mj1": 50.0}, ...])``."""
    return _lhco_rows


@pytest.fixture
def small_lhco() -> pd.DataFrame:
    """25 random but valid events in the LHCO layout, labels 0/1."""
    rng = np.random.default_rng(7)
    n = 25
    table = {}
    for j in ("j1", "j2"):
        table[f"px{j}"] = rng.normal(0, 800, n)
        table[f"py{j}"] = rng.normal(0, 800, n)
        table[f"pz{j}"] = rng.normal(0, 1500, n)
        table[f"m{j}"] = rng.uniform(10, 600, n)
        tau1 = rng.uniform(0.05, 0.5, n)
        table[f"tau1{j}"] = tau1
        table[f"tau2{j}"] = tau1 * rng.uniform(0.1, 1, n)
        table[f"tau3{j}"] = table[f"tau2{j}"] * rng.uniform(0.1, 1, n)
    table["label"] = (rng.random(n) < 0.3).astype(np.float64)
    return pd.DataFrame(table)[list(LHCO_COLUMNS)]
