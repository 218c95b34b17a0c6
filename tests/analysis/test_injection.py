"""Signal injection and benchmark splits: exact, seeded, labelled, recorded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.data import (
    BenchmarkSplit,
    build_features,
    inject_signal,
    lhco_benchmark_split,
    make_toy,
)
from analysis.data.injection import benchmark_split, benchmark_split_from_parts

SR = (3.3, 3.7)


@pytest.fixture(scope="module")
def toy_pools() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw toy background (6000 events) and signal pool (1500 events)."""
    background = make_toy(6000, random_state=11)
    signal = make_toy(0, 1500, random_state=12)
    return background, signal


def _mjj(df: pd.DataFrame) -> np.ndarray:
    return build_features(df, ())["mjj"].to_numpy()


def test_inject_exact_number_keeps_labels_and_records_it(toy_pools):
    background, signal = toy_pools
    injection = inject_signal(background, signal, n_signal=123, region=SR, random_state=1)
    data = injection.data
    assert len(data) == len(background) + 123
    assert injection.n_injected == 123
    assert data["label"].sum() == 123
    np.testing.assert_array_equal(np.flatnonzero(data["label"] == 1), injection.injected_index)
    # The injected rows are exactly the recorded pool events.
    injected = data.iloc[injection.injected_index].sort_values("pxj1").reset_index(drop=True)
    recorded = signal.loc[injection.signal_index].sort_values("pxj1").reset_index(drop=True)
    pd.testing.assert_frame_equal(injected, recorded)
    mjj = _mjj(data)
    in_sr = (mjj >= SR[0]) & (mjj < SR[1])
    assert injection.n_signal_in_region == int(in_sr[injection.injected_index].sum())
    assert injection.n_background_in_region == int(in_sr.sum()) - injection.n_signal_in_region
    assert injection.summary()["n_injected"] == 123


def test_injection_is_seeded(toy_pools):
    background, signal = toy_pools
    a = inject_signal(background, signal, n_signal=50, random_state=5)
    b = inject_signal(background, signal, n_signal=50, random_state=5)
    c = inject_signal(background, signal, n_signal=50, random_state=6)
    pd.testing.assert_frame_equal(a.data, b.data)
    assert not a.signal_index.equals(c.signal_index)


@pytest.mark.parametrize("s_over_b", [0.0, 0.01, 0.05])
def test_s_over_b_is_exact_in_the_region(toy_pools, s_over_b):
    background, signal = toy_pools
    injection = inject_signal(background, signal, s_over_b=s_over_b, region=SR, random_state=3)
    mjj_b = _mjj(background)
    n_b = int(((mjj_b >= SR[0]) & (mjj_b < SR[1])).sum())
    target = round(s_over_b * n_b)
    assert injection.n_background_in_region == n_b
    assert injection.n_signal_in_region == target
    assert injection.s_over_b == pytest.approx(target / n_b)
    mjj = _mjj(injection.data.iloc[injection.injected_index])
    assert int(((mjj >= SR[0]) & (mjj < SR[1])).sum()) == target
    # Out-of-region signal comes along (the pool's tail), but no more than the pool holds.
    assert target <= injection.n_injected <= len(signal)


def test_injection_into_features_tables_uses_their_mjj(toy_pools):
    background, signal = (build_features(df).drop(columns="label") for df in toy_pools)
    injection = inject_signal(background, signal, s_over_b=0.02, region=SR, random_state=0)
    assert list(injection.data.columns) == [*background.columns, "label"]
    assert injection.data["label"].dtype == np.int64
    sr = injection.data[(injection.data["mjj"] >= SR[0]) & (injection.data["mjj"] < SR[1])]
    assert sr["label"].sum() == round(0.02 * (sr["label"] == 0).sum())


def test_injection_errors(toy_pools):
    background, signal = toy_pools
    with pytest.raises(ValueError, match="exactly one"):
        inject_signal(background, signal)
    with pytest.raises(ValueError, match="exactly one"):
        inject_signal(background, signal, n_signal=1, s_over_b=0.1, region=SR)
    with pytest.raises(ValueError, match="needs the region"):
        inject_signal(background, signal, s_over_b=0.1)
    with pytest.raises(ValueError, match=r"cannot inject 1501 .* pool of 1500"):
        inject_signal(background, signal, n_signal=1501)
    with pytest.raises(ValueError, match=r"needs \d+ signal events there .* pool has \d+"):
        inject_signal(background, signal, s_over_b=2.0, region=SR)
    with pytest.raises(ValueError, match="no background events in the region"):
        inject_signal(background, signal, s_over_b=0.1, region=(9.0, 10.0))
    with pytest.raises(KeyError, match="mj2"):
        inject_signal(background.drop(columns="mj2"), signal, n_signal=1)
    with pytest.raises(TypeError, match="n_signal must be an int"):
        inject_signal(background, signal, n_signal=2.5)


def _assert_disjoint(*tables: pd.DataFrame) -> None:
    # pxj1 is continuous: equal values mean the same event.
    values = np.concatenate([t["pxj1"].to_numpy() for t in tables])
    assert len(np.unique(values)) == len(values)


def test_benchmark_split_by_fractions(toy_pools):
    background, signal = toy_pools
    split = benchmark_split(
        background, signal, n_inject=100, fractions=(0.5, 0.25, 0.25), random_state=4
    )
    assert isinstance(split, BenchmarkSplit)
    assert len(split.data) == 3000 + 100
    assert len(split.extra_background) == 1500
    assert len(split.test) == 1500 + 1400
    assert split.n_test_signal == 1400
    assert split.test["label"].sum() == 1400
    assert split.extra_background["label"].sum() == 0
    _assert_disjoint(split.data, split.test, split.extra_background)
    again = benchmark_split(
        background, signal, n_inject=100, fractions=(0.5, 0.25, 0.25), random_state=4
    )
    pd.testing.assert_frame_equal(split.test, again.test)


def test_benchmark_split_from_parts_caps_test_signal(toy_pools):
    background, signal = toy_pools
    split = benchmark_split_from_parts(
        background.iloc[:3000],
        background.iloc[3000:4000],
        background.iloc[4000:],
        signal,
        n_inject=200,
        n_test_signal=500,
        region=SR,
        random_state=9,
    )
    assert split.injection.n_injected == 200
    assert split.test["label"].sum() == 500
    assert split.injection.n_signal_in_region is not None
    _assert_disjoint(split.data, split.test, split.extra_background)
    with pytest.raises(ValueError, match="1000 injected \\+ 600 test signal"):
        benchmark_split_from_parts(
            background, background, background, signal, n_inject=1000, n_test_signal=600
        )


def test_split_map_builds_features(toy_pools):
    background, signal = toy_pools
    split = benchmark_split(background, signal, n_inject=50, random_state=2)
    features = split.map(build_features)
    assert list(features.data.columns) == [
        "mjj",
        "mj1",
        "delta_mj",
        "tau21_j1",
        "tau21_j2",
        "label",
    ]
    assert features.injection.data is features.data
    assert features.data["label"].iloc[split.injection.injected_index].eq(1).all()


def test_lhco_benchmark_split_reads_the_part_files(tmp_path):
    for part in range(1, 11):
        make_toy(200, random_state=part).to_hdf(tmp_path / f"qcd_part{part:02d}.h5", key="df")
    make_toy(0, 300, random_state=99).to_hdf(tmp_path / "signal_wprime3500_x500_y100.h5", key="df")
    split = lhco_benchmark_split(tmp_path, n_inject=40, random_state=0)
    assert len(split.data) == 6 * 200 + 40
    assert len(split.extra_background) == 2 * 200
    assert len(split.test) == 2 * 200 + 260
    assert split.test["label"].sum() == 260
    assert split.injection.region == (3.3, 3.7)
    _assert_disjoint(split.data, split.test, split.extra_background)
    (tmp_path / "qcd_part08.h5").unlink()
    with pytest.raises(FileNotFoundError, match=r"qcd_part08\.h5"):
        lhco_benchmark_split(tmp_path, n_inject=40)
