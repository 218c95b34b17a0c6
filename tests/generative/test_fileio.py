"""Atomic writes: all or nothing, with the permissions of a normally created file."""

from __future__ import annotations

import os
import stat

import pytest

from generative.fileio import atomic_path, write_atomic


def test_written_file_has_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "sub" / "result.json", "{}")
    finally:
        os.umask(umask)
    assert path.read_text() == "{}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = write_atomic(tmp_path / "model.pt", b"old")

    def interrupted_write() -> None:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        interrupted_write()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
