"""Atomic writes leave either the old file or the new one, never a partial one."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorag.atomic import atomic_open, atomic_write_text, clean_stale_temps


def test_write_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "一")
    atomic_write_text(target, "二")
    assert target.read_text(encoding="utf-8") == "二"


def test_error_mid_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as fh:
        fh.write("half")
        raise RuntimeError("crash")
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_clean_stale_temps(tmp_path: Path) -> None:
    (tmp_path / ".lorag-tmp-abc").write_text("x")
    (tmp_path / ".lorag-tmp-dir").mkdir()
    (tmp_path / "keep.txt").write_text("y")
    assert clean_stale_temps(tmp_path) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_atomic_copy_keeps_mode_and_content(tmp_path: Path) -> None:
    from lorag.atomic import atomic_copy

    src = tmp_path / "a.yaml"
    src.write_text("設定: 1\n", encoding="utf-8")
    src.chmod(0o640)
    atomic_copy(src, tmp_path / "a.yaml.bak")
    assert (tmp_path / "a.yaml.bak").read_text(encoding="utf-8") == "設定: 1\n"
    assert (tmp_path / "a.yaml.bak").stat().st_mode & 0o777 == 0o640


def test_a_failed_write_names_the_target_not_the_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    import lorag.atomic

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lorag.atomic.os, "fsync", full)
    with pytest.raises(OSError) as info:
        atomic_write_text(tmp_path / "a.txt", "x")
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(tmp_path / "a.txt"))
    assert os.listdir(tmp_path) == []
