"""Method comparison on labelled toy data: metrics on a held-out test set, checkpoints, output."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import analysis.compare as compare
import analysis.sideband_fits as sideband_fits
import analysis.units as units
from analysis.compare import make_benchmark, run_compare
from analysis.config import load_config
from analysis.store import ConfigChangedError, ResultStore
from tests.analysis.search_configs import FAST_CATHODE, FAST_HGB, tiny


def small_compare(tmp_path, **overrides) -> dict:
    """Two methods, two injections, one seed, a 6k-event SR test set."""
    raw = tiny(tmp_path, "compare")
    raw["compare"] = {
        "methods": [
            {"name": "supervised", "options": FAST_HGB},
            {"name": "cwola", "options": FAST_HGB},
        ],
        "injections": [0, 600],
        "seeds": [0],
        "sideband_width": 0.4,
        "n_test_background": 5_000,
        "n_test_signal": 1_000,
        "min_background": 20,
        **overrides,
    }
    return raw


def test_benchmark_test_set_is_disjoint_from_the_data_and_in_the_signal_region(tmp_path):
    config = load_config(small_compare(tmp_path))
    bench = make_benchmark(config, 600, 0)
    features = list(config.data.features)
    data_rows = set(map(tuple, bench.data[features].to_numpy()))
    test_rows = set(map(tuple, bench.test[features].to_numpy()))
    assert not data_rows & test_rows
    assert bench.test["mjj"].between(3.3, 3.7, inclusive="left").all()
    assert (bench.test["label"] == 1).sum() == 1_000
    assert (bench.test["label"] == 0).sum() == 5_000
    assert int(bench.data["label"].sum()) == 600


def test_compare_writes_metrics_per_method_and_injection_and_resumes(tmp_path, monkeypatch):
    config = load_config(small_compare(tmp_path))
    result = run_compare(config)
    assert [(r["injection"], r["method"]) for r in result["summary"]] == [
        (0, "supervised"),
        (0, "cwola"),
        (600, "supervised"),
        (600, "cwola"),
    ]
    by_key = {(r["injection"], r["method"]): r for r in result["summary"]}
    # With 600 injected events the supervised reference separates the toy signal clearly.
    assert by_key[(600, "supervised")]["auc"] > 0.9
    assert by_key[(600, "supervised")]["max_sic"] > 2.0
    # Without injected signal the supervised reference has nothing to learn: skipped, said why.
    assert by_key[(0, "supervised")]["n_seeds"] == 0
    assert "0 signal events" in by_key[(0, "supervised")]["skipped"][0]
    assert by_key[(0, "cwola")]["n_seeds"] == 1
    saved = json.loads((config.output / "compare" / "compare.json").read_text())
    assert saved["summary"] == result["summary"]
    assert "| 600 | cwola |" in (config.output / "compare" / "compare.md").read_text()
    for plot in saved["plots"]:
        assert (config.output / "compare" / plot).stat().st_size > 5_000

    def never(*args, **kwargs):
        raise AssertionError("a finished comparison unit was fitted again")

    monkeypatch.setattr(units, "make_detector", never)
    assert run_compare(config)["summary"] == result["summary"]


def test_compare_needs_labelled_data(tmp_path):
    raw = small_compare(tmp_path)
    raw["data"] = {"source": "table", "paths": [str(tmp_path / "features.parquet")]}
    with pytest.raises(ValueError, match="compare needs labelled data"):
        run_compare(load_config(raw))


def test_resumed_compare_refuses_a_benchmark_whose_data_changed(tmp_path, monkeypatch):
    config = load_config(
        small_compare(tmp_path, injections=[600], methods=[{"name": "cwola", "options": FAST_HGB}])
    )
    run_compare(config)
    real = compare.make_benchmark

    def reshuffled(*args, **kwargs) -> compare.Benchmark:
        bench = real(*args, **kwargs)
        return dataclasses.replace(bench, data=bench.data.sample(frac=1.0, random_state=1))

    monkeypatch.setattr(compare, "make_benchmark", reshuffled)
    with pytest.raises(ConfigChangedError, match="other data of inj600/seed0"):
        run_compare(config)


def test_density_methods_share_one_sideband_fit_and_get_their_results_alone(tmp_path):
    cathode = {"name": "cathode", "options": FAST_CATHODE}
    ranode = {
        "name": "ranode",
        "options": {
            "density_params": FAST_CATHODE["density_params"],
            "n_folds": 3,
            "signal_training": {"epochs": 2},
        },
    }
    cwola = {"name": "cwola", "options": FAST_HGB}

    def records(name: str, methods: list[dict]) -> dict[str, dict]:
        raw = small_compare(tmp_path, injections=[600], methods=methods)
        raw["output"] = str(tmp_path / name)
        return {r["method"]: r for r in run_compare(load_config(raw))["runs"]}

    together = records("together", [cathode, ranode, cwola])
    for method in (cathode, ranode):
        alone = records(method["name"], [method])[method["name"]]
        mine = together[method["name"]]
        for metric in ("auc", "max_sic", "max_sic_eps_b", "rejection_at_eps_s_0p5"):
            assert mine[metric] == alone[metric], (method["name"], metric)
    assert len(together["ranode"]["signal_fractions"]) == 3
    assert "signal_fractions" not in together["cathode"]
    key = "compare/inj600/seed0/sideband/cathode"
    assert together["cathode"]["sideband"] == together["ranode"]["sideband"] == key
    assert "sideband" not in together["cwola"]
    store = ResultStore(tmp_path / "together" / "compare", "unused")
    shared = store.load_json(key)
    assert shared["methods"] == ["cathode", "ranode"]
    assert shared["cpu_seconds"] > 0


def test_a_set_interrupted_after_its_sideband_fit_resumes_without_refitting_it(
    tmp_path, monkeypatch
):
    methods = [
        {"name": "cathode", "options": FAST_CATHODE},
        {"name": "anode", "options": {"density_params": FAST_CATHODE["density_params"]}},
    ]

    def records(name: str) -> dict[str, dict]:
        raw = small_compare(tmp_path, injections=[600], methods=methods)
        raw["output"] = str(tmp_path / name)
        return {r["method"]: r for r in run_compare(load_config(raw))["runs"]}

    whole = records("whole")
    real_run = compare._run_method

    def killed_at_anode(store, key, unit, task):
        if key.endswith("/anode"):
            raise KeyboardInterrupt("killed")
        real_run(store, key, unit, task)

    monkeypatch.setattr(compare, "_run_method", killed_at_anode)
    with pytest.raises(KeyboardInterrupt):
        records("resumed")

    def never(unit):
        raise AssertionError("the kept sideband fit was made again")

    monkeypatch.setattr(compare, "_run_method", real_run)
    monkeypatch.setattr(sideband_fits, "fit_sideband_unit", never)
    resumed = records("resumed")
    for name in ("cathode", "anode"):
        for metric in ("auc", "max_sic", "rejection_at_eps_s_0p5"):
            assert resumed[name][metric] == whole[name][metric], (name, metric)
    store = ResultStore(tmp_path / "resumed" / "compare", "unused")
    assert store.load_json("compare/inj600/seed0/sideband/cathode")["methods"] == [
        "cathode",
        "anode",
    ]


def test_a_damaged_kept_sideband_fit_is_made_again(tmp_path):
    methods = [{"name": "cathode", "options": FAST_CATHODE}]
    raw = small_compare(tmp_path, injections=[600], methods=methods)
    first = run_compare(load_config(raw))["runs"][0]
    units_dir = Path(raw["output"]) / "compare" / "units" / "compare" / "inj600" / "seed0"
    kept = units_dir / "sideband" / "cathode_model.npz"
    kept.write_bytes(kept.read_bytes()[:100])
    (units_dir / "cathode.json").unlink()
    again = run_compare(load_config(raw))["runs"][0]
    assert again["max_sic"] == first["max_sic"]
    store = ResultStore(Path(raw["output"]) / "compare", "unused")
    assert store.has("compare/inj600/seed0/sideband/cathode_model")
