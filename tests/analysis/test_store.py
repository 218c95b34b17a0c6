"""Checkpoint store: atomic writes, resuming, refusing results of another configuration."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.store import ConfigChangedError, ResultStore, write_atomic, write_json


def test_arrays_and_json_round_trip(tmp_path):
    store = ResultStore(tmp_path / "run", "abc").open()
    assert not store.has("scores/cathode/w0")
    store.save_arrays("scores/cathode/w0", scores=np.arange(5.0))
    store.save_json("lee", {"p": 0.5, "z": float("inf")})
    reopened = ResultStore(tmp_path / "run", "abc").open()
    assert reopened.has("scores/cathode/w0")
    np.testing.assert_array_equal(
        reopened.load_arrays("scores/cathode/w0")["scores"], np.arange(5.0)
    )
    assert reopened.load_json("lee") == {"p": 0.5, "z": None}


def test_other_configuration_is_refused(tmp_path):
    ResultStore(tmp_path / "run", "abc").open()
    with pytest.raises(ConfigChangedError, match="another configuration"):
        ResultStore(tmp_path / "run", "xyz").open()


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})

    class Boom:
        def encode(self):
            raise RuntimeError("disk full")

    with pytest.raises((RuntimeError, TypeError)):
        write_atomic(target, Boom())
    assert target.read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
