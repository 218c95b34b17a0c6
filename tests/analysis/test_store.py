"""Checkpoint store: atomic writes, checksums, resuming, refusing other configurations or data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.store import (
    ConfigChangedError,
    CorruptCheckpointError,
    ResultStore,
    data_fingerprint,
    write_atomic,
    write_json,
)


def test_arrays_and_json_round_trip(tmp_path):
    store = ResultStore(tmp_path / "run", "abc").open()
    assert not store.has("scores/cathode/w0")
    store.save_arrays("scores/cathode/w0", scores=np.arange(5.0))
    store.save_json("lee", {"p": 0.5, "z": float("inf"), 3: (1, 2)})
    reopened = ResultStore(tmp_path / "run", "abc").open()
    assert reopened.has("scores/cathode/w0")
    np.testing.assert_array_equal(
        reopened.load_arrays("scores/cathode/w0")["scores"], np.arange(5.0)
    )
    assert reopened.load_json("lee") == {"p": 0.5, "z": None, "3": [1, 2]}


def test_other_configuration_is_refused_once_results_exist(tmp_path):
    store = ResultStore(tmp_path / "run", "abc").open()
    store.save_json("lee/cwola", {"p": 0.5})
    with pytest.raises(ConfigChangedError, match="another configuration"):
        ResultStore(tmp_path / "run", "xyz").open()


def test_folder_without_results_is_taken_over_by_a_corrected_config(tmp_path):
    # A run that failed before finishing a unit must not block its corrected configuration.
    ResultStore(tmp_path / "run", "abc").open()
    ResultStore(tmp_path / "run", "xyz").open()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["fingerprint"] == "xyz"


def test_changed_data_are_refused_like_a_changed_config(tmp_path):
    store = ResultStore(tmp_path / "run", "abc").open()
    store.check_data("d1")
    store.save_arrays("scores/x", a=np.ones(2))
    store.check_data("d1")
    with pytest.raises(ConfigChangedError, match=r"other input data .*an input file changed"):
        ResultStore(tmp_path / "run", "abc").open().check_data("d2")


def test_data_fingerprint_follows_contents_not_names():
    events = pd.DataFrame({"mjj": [3.1, 3.5, 4.0], "mj1": [0.1, 0.2, 0.3]})
    assert data_fingerprint(events) == data_fingerprint(events.copy())
    shuffled = events.iloc[[2, 0, 1]].reset_index(drop=True)
    assert data_fingerprint(shuffled) != data_fingerprint(events)
    nudged = events.copy()
    nudged.loc[1, "mj1"] = np.nextafter(0.2, 1.0)
    assert data_fingerprint(nudged) != data_fingerprint(events)


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        # Flip bytes in the middle: inside the stored values of an npz, or the JSON text.
        middle = len(data) // 2
        flipped = bytes(b ^ 0x01 for b in data[middle : middle + 8])
        path.write_bytes(data[:middle] + flipped + data[middle + 8 :])


@pytest.mark.parametrize("how", ["empty", "truncated", "flipped"])
@pytest.mark.parametrize("kind", ["npz", "json"])
def test_damaged_checkpoint_is_redone_or_named(tmp_path, how, kind):
    store = ResultStore(tmp_path / "run", "abc").open()
    if kind == "npz":
        # Uncompressed .npz: flipped value bytes keep the zip readable; the checksum catches them.
        store.save_arrays("u", scores=np.linspace(0.0, 1.0, 4096))
        load = store.load_arrays
    else:
        store.save_json("u", {"values": list(np.linspace(0.0, 1.0, 200))})
        load = store.load_json
    path = tmp_path / "run" / "units" / f"u.{kind}"
    _damage(path, how)
    with pytest.raises(CorruptCheckpointError, match=r"checkpoint .*u\.(npz|json) is damaged"):
        load("u")
    # Resuming: the damaged unit is removed, so the search computes it again.
    assert not store.has("u")
    assert not path.exists()


def test_damaged_manifest_is_named_with_the_way_out(tmp_path):
    ResultStore(tmp_path / "run", "abc").open()
    (tmp_path / "run" / "manifest.json").write_text('{"fingerprint": ')
    with pytest.raises(CorruptCheckpointError, match=r"manifest\.json is damaged .*remove"):
        ResultStore(tmp_path / "run", "abc").open()


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})

    def disk_full(self, data):
        with open(self, "wb") as handle:
            handle.write(data[:3])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_json(target, {"a": 2, "b": list(range(100))})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    write_atomic(target, b"old")

    def refuse(src, dst):
        raise PermissionError("read-only")

    monkeypatch.setattr("os.replace", refuse)
    with pytest.raises(PermissionError):
        write_atomic(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
