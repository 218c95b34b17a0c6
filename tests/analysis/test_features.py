"""Feature registry and feature values against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import analysis.data.features as features_module
from analysis.data import (
    DEFAULT_FEATURES,
    FEATURES,
    ZERO_DENOMINATOR_VALUE,
    build_features,
    register_feature,
)


def test_mjj_of_back_to_back_massless_jets(lhco_rows):
    raw = lhco_rows(
        [{"pxj1": 600.0, "pyj1": 800.0, "mj1": 0.0, "pxj2": -600.0, "pyj2": -800.0, "mj2": 0.0}]
    )
    assert build_features(raw)["mjj"].iloc[0] == pytest.approx(2.0, rel=1e-12)  # 2 x 1000 GeV


def test_mjj_of_massive_jets_with_longitudinal_momentum(lhco_rows):
    jets = {"pxj1": 300.0, "pyj1": 400.0, "pzj1": 1200.0, "mj1": 50.0}
    jets |= {"pxj2": -300.0, "pyj2": -400.0, "pzj2": 0.0, "mj2": 80.0}
    raw = lhco_rows([jets])
    # E1 = sqrt(1300^2 + 50^2), E2 = sqrt(500^2 + 80^2), total momentum (0, 0, 1200) GeV.
    energy = math.sqrt(1300.0**2 + 50.0**2) + math.sqrt(500.0**2 + 80.0**2)
    expected_tev = math.sqrt(energy**2 - 1200.0**2) / 1000
    assert build_features(raw)["mjj"].iloc[0] == pytest.approx(expected_tev, rel=1e-12)


def test_substructure_features_order_jets_by_mass(lhco_rows):
    # Row 0: raw j1 (leading pT) is the heavier jet; row 1: it is the lighter one.
    raw = lhco_rows(
        [
            {"mj1": 500.0, "tau1j1": 0.5, "tau2j1": 0.1, "tau3j1": 0.09, "mj2": 100.0},
            {"mj1": 80.0, "tau1j1": 0.5, "tau2j1": 0.1, "tau3j1": 0.09, "mj2": 120.0},
        ]
    )
    names = ("mj1", "mj2", "delta_mj", "tau21_j1", "tau21_j2", "tau32_j1", "tau32_j2")
    f = build_features(raw, names)
    # The conftest defaults for the other jet: tau1 0.4, tau2 0.1, tau3 0.08.
    np.testing.assert_allclose(f["mj1"], [0.100, 0.080])
    np.testing.assert_allclose(f["mj2"], [0.500, 0.120])
    np.testing.assert_allclose(f["delta_mj"], [0.400, 0.040])
    np.testing.assert_allclose(f["tau21_j1"], [0.1 / 0.4, 0.1 / 0.5])
    np.testing.assert_allclose(f["tau21_j2"], [0.1 / 0.5, 0.1 / 0.4])
    np.testing.assert_allclose(f["tau32_j1"], [0.08 / 0.1, 0.09 / 0.1])
    np.testing.assert_allclose(f["tau32_j2"], [0.09 / 0.1, 0.08 / 0.1])


def test_jet_pt_features_in_tev_follow_mass_order(lhco_rows):
    raw = lhco_rows(
        [{"pxj1": 1200.0, "pyj1": 500.0, "mj1": 400.0, "pxj2": -900.0, "pyj2": 0.0, "mj2": 30.0}]
    )
    f = build_features(raw, ("pt_j1", "pt_j2"))
    assert f["pt_j1"].iloc[0] == pytest.approx(0.9)  # the lighter jet is the raw j2
    assert f["pt_j2"].iloc[0] == pytest.approx(1.3)  # hypot(1200, 500) GeV


def test_zero_tau_denominators_give_the_documented_value(lhco_rows):
    raw = lhco_rows([{"mj1": 10.0, "tau1j1": 0.0, "tau2j1": 0.0, "tau3j1": 0.0}, {"tau2j2": 0.0}])
    f = build_features(raw, ("tau21_j1", "tau32_j1", "tau32_j2"))
    assert ZERO_DENOMINATOR_VALUE == 0.0
    assert f.notna().all().all()
    assert f["tau21_j1"].iloc[0] == ZERO_DENOMINATOR_VALUE
    assert f["tau32_j1"].iloc[0] == ZERO_DENOMINATOR_VALUE
    assert f["tau32_j2"].iloc[1] == ZERO_DENOMINATOR_VALUE
    assert f["tau21_j1"].iloc[1] == pytest.approx(0.5)


def test_default_table_layout(small_lhco):
    f = build_features(small_lhco)
    assert DEFAULT_FEATURES == ("mj1", "delta_mj", "tau21_j1", "tau21_j2")
    assert list(f.columns) == ["mjj", *DEFAULT_FEATURES, "label"]
    assert f["label"].dtype == np.int64
    np.testing.assert_array_equal(f["label"], small_lhco["label"].astype(int))
    assert f.index.equals(small_lhco.index)
    assert (f["delta_mj"] >= 0).all()


def test_black_box_table_has_no_label(small_lhco):
    f = build_features(small_lhco.drop(columns="label"), ("mjj", "tau32_j1"))
    assert list(f.columns) == ["mjj", "tau32_j1"]


def test_every_registered_feature_is_finite_on_valid_input(small_lhco):
    f = build_features(small_lhco, tuple(FEATURES))
    assert np.isfinite(f.to_numpy(dtype=float)).all()
    assert set(FEATURES) >= {"mjj", "mj1", "mj2", "delta_mj", "pt_j1", "pt_j2"}
    assert set(FEATURES) >= {"tau21_j1", "tau21_j2", "tau32_j1", "tau32_j2"}


@pytest.fixture
def private_registry(monkeypatch):
    """Registrations in a test do not leak into the package registry."""
    monkeypatch.setattr(features_module, "FEATURES", dict(FEATURES))
    return features_module.FEATURES


def test_registered_feature_is_one_line_of_config_away(private_registry, small_lhco):
    @register_feature("tau31_j1")
    def tau31(raw: pd.DataFrame) -> np.ndarray:
        return (raw["tau3j1"] / raw["tau1j1"]).to_numpy()

    f = build_features(small_lhco, (*DEFAULT_FEATURES, "tau31_j1"))
    np.testing.assert_allclose(f["tau31_j1"], small_lhco["tau3j1"] / small_lhco["tau1j1"])
    with pytest.raises(ValueError, match="already registered"):
        register_feature("tau31_j1")(tau31)
    assert "tau31_j1" in private_registry


def test_feature_returning_nan_is_an_error(private_registry, small_lhco):
    register_feature("broken")(lambda raw: np.where(raw["mj1"] > 300, np.nan, 1.0))
    n_bad = int((small_lhco["mj1"] > 300).sum())
    with pytest.raises(ValueError, match=rf"'broken' is NaN or inf in {n_bad} of 25 rows"):
        build_features(small_lhco, ("broken",))


def test_bad_requests_raise(small_lhco):
    with pytest.raises(KeyError, match="tau42"):
        build_features(small_lhco, ("tau42",))
    with pytest.raises(ValueError, match="repeat"):
        build_features(small_lhco, ("mj1", "mj1"))
    with pytest.raises(TypeError, match="sequence"):
        build_features(small_lhco, "mj1")
    with pytest.raises(ValueError, match="reserved"):
        register_feature("label")


def test_invalid_raw_table_is_rejected(small_lhco):
    bad = small_lhco.copy()
    bad.loc[4, "pzj1"] = np.nan
    with pytest.raises(ValueError, match=r"'pzj1': 1 of 25 rows"):
        build_features(bad)
