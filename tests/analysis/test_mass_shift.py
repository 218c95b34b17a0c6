"""The CATHODE paper's shifted test: jet masses + mass_shift x mjj, in every table built."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.compare import make_benchmark
from analysis.config import load_config
from analysis.data import build_features, make_toy, shift_jet_masses
from analysis.inputs import load_search_data

MASS_FEATURES = ("mj1", "mj2")
UNSHIFTED_FEATURES = ("delta_mj", "tau21_j1", "tau21_j2", "tau32_j1", "tau32_j2", "pt_j1", "pt_j2")
ALL_FEATURES = (*MASS_FEATURES, *UNSHIFTED_FEATURES)
# Masses of a few hundred GeV plus 0.1 mjj, rounded in GeV then divided into TeV.
ATOL_TEV = 1e-12


def assert_shifted(plain: pd.DataFrame, shifted: pd.DataFrame, mass_shift: float) -> None:
    """`shifted` is `plain` with the jet masses raised by mass_shift x mjj, all else unchanged."""
    mjj = plain["mjj"].to_numpy()
    np.testing.assert_array_equal(shifted["mjj"], mjj)
    for name in MASS_FEATURES:
        np.testing.assert_allclose(shifted[name], plain[name] + mass_shift * mjj, atol=ATOL_TEV)
    for name in set(UNSHIFTED_FEATURES) & set(plain.columns):
        # delta_mj is a difference of two shifted masses: equal up to rounding.
        exact = name != "delta_mj"
        np.testing.assert_allclose(shifted[name], plain[name], rtol=0, atol=0 if exact else 1e-12)
    if "label" in plain:
        np.testing.assert_array_equal(shifted["label"], plain["label"])


def test_shift_raises_jet_masses_by_a_fraction_of_mjj_and_nothing_else(small_lhco):
    plain = build_features(small_lhco, ALL_FEATURES)
    shifted = build_features(small_lhco, ALL_FEATURES, mass_shift=0.1)
    assert_shifted(plain, shifted, 0.1)
    assert (shifted["mj1"] > plain["mj1"]).all()


def test_shift_jet_masses_returns_a_shifted_copy(small_lhco):
    before = small_lhco.copy()
    shifted = shift_jet_masses(small_lhco, 0.25)
    pd.testing.assert_frame_equal(small_lhco, before)
    mjj_gev = 1000 * build_features(small_lhco)["mjj"].to_numpy()
    for column in ("mj1", "mj2"):
        np.testing.assert_allclose(shifted[column], small_lhco[column] + 0.25 * mjj_gev)
    others = [c for c in small_lhco.columns if c not in ("mj1", "mj2")]
    pd.testing.assert_frame_equal(shifted[others], small_lhco[others])


@pytest.mark.parametrize("off", [0, 0.0, np.float64(0.0)])
def test_zero_shift_leaves_features_bit_identical(small_lhco, off):
    plain = build_features(small_lhco, ALL_FEATURES)
    pd.testing.assert_frame_equal(
        build_features(small_lhco, ALL_FEATURES, mass_shift=off), plain, check_exact=True
    )


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (-0.1, ValueError, r"mass_shift must be finite and >= 0 \(0 = off\), got -0.1"),
        (float("nan"), ValueError, "mass_shift must be finite and >= 0"),
        (float("inf"), ValueError, "mass_shift must be finite and >= 0"),
        ("0.1", TypeError, r"mass_shift must be a number \(a factor of mjj\), got '0.1'"),
        (True, TypeError, "mass_shift must be a number"),
        (None, TypeError, "mass_shift must be a number"),
    ],
)
@pytest.mark.parametrize(
    "shift",
    [lambda raw, v: build_features(raw, mass_shift=v), shift_jet_masses],
    ids=["build_features", "shift_jet_masses"],
)
def test_bad_shift_is_refused(small_lhco, shift, value, error, message):
    with pytest.raises(error, match=message):
        shift(small_lhco, value)


@pytest.fixture
def lhco_directory(tmp_path):
    """Ten toy background parts and a signal file in the LHCO layout, named as the benchmark's."""
    for part in range(1, 11):
        make_toy(600, random_state=part).to_hdf(tmp_path / f"qcd_part{part:02d}.h5", key="df")
    make_toy(0, 400, random_state=11).to_hdf(tmp_path / "signal_wprime3500_x500_y100.h5", key="df")
    return tmp_path


def lhco_config(directory, mass_shift: float, **data):
    """A comparison and search of the files in `directory` with the given mass shift."""
    return load_config(
        {
            "data": {
                "source": "lhco",
                "paths": [str(directory / f"qcd_part{p:02d}.h5") for p in range(1, 7)],
                "signal_path": str(directory / "signal_wprime3500_x500_y100.h5"),
                "features": list(ALL_FEATURES),
                "mass_shift": mass_shift,
                **data,
            },
            "compare": {"lhco_directory": str(directory)},
        }
    )


def test_comparison_shifts_data_signal_extra_background_and_test_set(lhco_directory):
    plain, shifted = (
        make_benchmark(lhco_config(lhco_directory, shift), injection=100, seed=0)
        for shift in (0.0, 0.1)
    )
    assert int(plain.data["label"].sum()) == 100
    assert plain.test["label"].sum() > 0
    for table in ("data", "extra_background", "test"):
        assert_shifted(getattr(plain, table), getattr(shifted, table), 0.1)


@pytest.mark.parametrize("source", ["lhco", "toy"])
def test_search_shifts_its_events_and_extra_background(lhco_directory, source):
    data = {"injection": {"n_signal": 100}}
    if source == "toy":
        data |= {"source": "toy", "n_background": 2_000}
    plain, shifted = (
        load_search_data(lhco_config(lhco_directory, shift, **data).data, np.random.SeedSequence(0))
        for shift in (0.0, 0.1)
    )
    assert int(plain.events["label"].sum()) > 0
    assert_shifted(plain.events, shifted.events, 0.1)
    if source == "toy":
        assert_shifted(plain.extra_background, shifted.extra_background, 0.1)
