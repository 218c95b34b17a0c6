"""The built-in toy: layout, seeding and the physics shapes a search relies on.

Statistical checks use fixed seeds; tolerances are stated next to each check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.data import LHCO_COLUMNS, ToySignal, build_features, make_toy, validate_lhco
from analysis.data.toy import dijet_density

SR = (3.3, 3.7)
FEATURES = ("mj1", "delta_mj", "tau21_j1", "tau21_j2")


@pytest.fixture(scope="module")
def toy() -> pd.DataFrame:
    """Features of 150k background and 6k default-signal events."""
    return build_features(make_toy(150_000, 6_000, random_state=2024), (*FEATURES, "mj2"))


def test_layout_is_the_lhco_one():
    raw = make_toy(500, 40, random_state=0)
    assert list(raw.columns) == list(LHCO_COLUMNS)
    assert (raw.dtypes == np.float64).all()
    assert raw["label"].sum() == 40
    validate_lhco(raw, require_label=True)
    # Raw j1 is the leading-pT jet.
    assert (np.hypot(raw["pxj1"], raw["pyj1"]) >= np.hypot(raw["pxj2"], raw["pyj2"])).all()
    # Signal is shuffled in, not appended.
    assert raw["label"].iloc[-40:].sum() < 40


def test_same_seed_same_events_other_seed_other_events():
    pd.testing.assert_frame_equal(
        make_toy(300, 30, random_state=5), make_toy(300, 30, random_state=5)
    )
    assert not make_toy(300, random_state=5).equals(make_toy(300, random_state=6))


def test_empty_parts_and_bad_arguments():
    assert len(make_toy(0, 0)) == 0
    assert make_toy(0, 7, random_state=1)["label"].eq(1).all()
    with pytest.raises(ValueError, match="n_background"):
        make_toy(-1)
    with pytest.raises(TypeError, match="n_signal"):
        make_toy(10, 2.5)
    with pytest.raises(ValueError, match="cannot produce"):
        make_toy(10, 10, signal=ToySignal(mjj=0.7, width=0.05))
    with pytest.raises(ValueError, match="tau21"):
        make_toy(10, 10, signal=ToySignal(tau21=1.2))


def test_mjj_follows_the_dijet_density(toy):
    mjj = toy.loc[toy["label"] == 0, "mjj"].to_numpy()
    grid = np.linspace(2.0, 8.0, 20001)
    cdf = np.cumsum(dijet_density(grid))
    cdf = (cdf - cdf[0]) / (cdf[-1] - cdf[0])
    # KS against the density the generator is meant to follow (p > 0.01 at this seed).
    assert stats.kstest(mjj, lambda x: np.interp(x, grid, cdf)).pvalue > 0.01


def test_mjj_spectrum_turns_on_then_falls(toy):
    mjj = toy.loc[toy["label"] == 0, "mjj"]
    counts, edges = np.histogram(mjj, bins=np.arange(2.0, 6.01, 0.25))
    peak = edges[np.argmax(counts)]
    assert 2.5 <= peak <= 3.0  # trigger-like turn-on near 2.6 TeV
    falling = counts[edges[:-1] >= 3.0]
    assert (np.diff(falling) < 0).all()  # every bin above 3 TeV below its left neighbour
    assert 0.11 < ((mjj >= SR[0]) & (mjj < SR[1])).mean() < 0.17  # ~14% as in Pythia QCD


def test_jet_mass_grows_with_mjj(toy):
    bkg = toy[toy["label"] == 0]
    r = np.corrcoef(bkg["mjj"], bkg["mj1"])[0, 1]
    # Pearson r has standard error ~ 1/sqrt(150k) = 0.003: 0.15 is many sigma from 0.
    assert r > 0.15
    low = bkg.loc[bkg["mjj"].between(2.8, 3.2), "mj1"].median()
    high = bkg.loc[bkg["mjj"].between(4.5, 5.5), "mj1"].median()
    assert high > 1.3 * low


def test_tau21_depends_on_mjj_at_fixed_jet_mass(toy):
    bkg = toy[(toy["label"] == 0) & toy["mj1"].between(0.08, 0.12)]
    low = bkg.loc[bkg["mjj"].between(2.8, 3.2), "tau21_j1"]
    high = bkg.loc[bkg["mjj"].between(4.0, 6.0), "tau21_j1"]
    # A fixed mass at higher pT is a smaller m/pT, hence more one-prong (higher tau21).
    error = np.hypot(low.std() / np.sqrt(len(low)), high.std() / np.sqrt(len(high)))
    assert high.mean() - low.mean() > 5 * error


@pytest.mark.parametrize("mass", [3.5, 4.2])
def test_signal_peaks_at_the_requested_resonance(mass):
    signal = ToySignal(mjj=mass, width=0.1, mj1=0.08, mj2=0.3)
    f = build_features(make_toy(0, 4000, signal=signal, random_state=8), ("mj1", "mj2"))
    # Median of 4000 Gaussian draws: standard error 1.25 sigma / sqrt(4000) ~ 0.002 TeV.
    assert f["mjj"].median() == pytest.approx(mass, abs=0.01)
    assert f["mjj"].std() == pytest.approx(0.1, rel=0.1)
    assert f["mj1"].median() == pytest.approx(0.08, rel=0.02)
    assert f["mj2"].median() == pytest.approx(0.3, rel=0.02)


def _max_sic(pass_signal: np.ndarray, pass_background: np.ndarray, min_background: int) -> float:
    """Max of eps_S / sqrt(eps_B) over selections (columns) keeping >= min_background events."""
    eps_s = pass_signal.mean(axis=0)
    n_b = pass_background.sum(axis=0)
    ok = n_b >= min_background
    return float(np.max(eps_s[ok] / np.sqrt(n_b[ok] / len(pass_background))))


def _threshold_passes(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return np.concatenate([values[:, None] > thresholds, values[:, None] < thresholds], axis=1)


def test_signal_needs_the_combination_not_one_cut(toy):
    sr = toy[toy["mjj"].between(*SR)]
    sig, bkg = sr[sr["label"] == 1], sr[sr["label"] == 0]
    best_single = 0.0
    for name in FEATURES:
        thresholds = np.quantile(sr[name], np.linspace(0.005, 0.995, 100))
        sic = _max_sic(
            _threshold_passes(sig[name].to_numpy(), thresholds),
            _threshold_passes(bkg[name].to_numpy(), thresholds),
            min_background=50,
        )
        best_single = max(best_single, sic)
        # Each 1-D signal distribution overlaps the background: most signal lies inside the
        # central 98% of the background.
        lo, hi = bkg[name].quantile([0.01, 0.99])
        assert sig[name].between(lo, hi).mean() > 0.8
    # Rectangular cuts: heavier-minus-lighter mass, both tau21, a light-jet mass ceiling.
    grid = np.meshgrid([0.25, 0.3, 0.325, 0.35], [0.3, 0.35, 0.4, 0.5], [0.5, 0.65, 0.8], [0.12, 1])
    cuts = np.array(grid).reshape(4, -1)

    def box(df):
        return (
            (df["delta_mj"].to_numpy()[:, None] > cuts[0])
            & (df["tau21_j1"].to_numpy()[:, None] < cuts[1])
            & (df["tau21_j2"].to_numpy()[:, None] < cuts[2])
            & (df["mj1"].to_numpy()[:, None] < cuts[3])
        )

    combined = _max_sic(box(sig), box(bkg), min_background=50)
    # One cut gives a modest gain; the combination at least doubles it.
    assert best_single < 4.0
    assert combined > 2 * best_single
