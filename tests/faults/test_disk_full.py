"""A full disk, for real (a small tmpfs filled up): config and store are left as they were, one line says why."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.faults.conftest import FAST_CONFIG, Mount, documents, lorag, one_error_line, settle

DISK_FULL = "disk is full"  # "the disk is full" (recognised) or SQLite's "database or disk is full" (the store's)


@pytest.fixture
def workspace(tmpfs: Mount, tmp_path: Path) -> Path:
    """A config and a store with one document, on the tmpfs."""
    (tmpfs.path / "lorag.yaml").write_text(FAST_CONFIG, encoding="utf-8")
    first = tmp_path / "最初.txt"
    first.write_text("最初の文書です。経費は翌月10日までに申請します。\n", encoding="utf-8")
    assert lorag("ingest", str(first), cwd=tmpfs.path).returncode == 0
    return tmpfs.path


def big_document(tmp_path: Path) -> Path:
    rng = random.Random(7)
    text = "".join(rng.choice("あいうえおかきくけこ経費申請。\n") for _ in range(300_000))  # ~0.9 MB of UTF-8
    path = tmp_path / "大きい.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_write_on_a_full_disk_changes_nothing(tmpfs: Mount) -> None:
    config = tmpfs.path / "lorag.yaml"
    config.write_text(FAST_CONFIG, encoding="utf-8")
    tmpfs.fill()
    line = one_error_line(lorag("init", "--force", cwd=tmpfs.path))
    assert line.startswith(f"error: the disk is full (writing {config}.bak); the config was not changed. Free some")
    tmpfs.free()
    assert config.read_text(encoding="utf-8") == FAST_CONFIG
    assert sorted(p.name for p in tmpfs.path.iterdir()) == ["lorag.yaml"]  # no partial .bak, no temp file


def test_ingest_on_a_nearly_full_disk_keeps_the_store(workspace: Path, tmpfs: Mount, tmp_path: Path) -> None:
    store = workspace / ".lorag" / "lorag.db"
    before = documents(store)
    tmpfs.fill(leave_bytes=256 * 1024)  # room to open the store, not to add the document
    line = one_error_line(lorag("ingest", str(big_document(tmp_path)), cwd=workspace))
    assert DISK_FULL in line, line
    tmpfs.free()
    assert documents(store) == before


def test_a_store_on_a_full_disk_is_not_called_damaged(workspace: Path, tmpfs: Mount) -> None:
    # SQLite reports its WAL index not growing as a "disk I/O error"; the old hint said to move the store away.
    before = documents(workspace / ".lorag" / "lorag.db")
    settle(workspace / ".lorag" / "lorag.db")
    tmpfs.fill()
    line = one_error_line(lorag("search", "経費", cwd=workspace))
    assert DISK_FULL in line and "damaged" not in line, line
    tmpfs.free()
    assert documents(workspace / ".lorag" / "lorag.db") == before
    found = lorag("search", "経費", "-k", "1", cwd=workspace)
    assert found.returncode == 0 and found.stdout.startswith("1. ")


def test_remove_on_a_full_disk_keeps_the_store(workspace: Path, tmpfs: Mount, tmp_path: Path) -> None:
    store = workspace / ".lorag" / "lorag.db"
    before = documents(store)
    tmpfs.fill()
    proc = lorag("remove", str(tmp_path / "最初.txt"), cwd=workspace)
    one_error_line(proc)
    assert DISK_FULL in proc.stderr
    tmpfs.free()
    assert documents(store) == before


def test_the_traceback_log_survives_a_full_cache_disk(tmpfs: Mount, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from lorag.crashlog import save_traceback

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmpfs.path / "cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    tmpfs.fill()
    path = save_traceback(RuntimeError("x"), "test")
    assert path is not None and path.parent == tmp_path / "lorag-logs"
    assert "RuntimeError: x" in path.read_text(encoding="utf-8")


def _worker(target: str, log_dir: str, conn: object) -> None:
    """What a build worker does with a failure: one line back to the server, the traceback (if a bug) in a log."""
    from lorag.atomic import atomic_write_bytes
    from lorag.crashlog import failure_line

    try:
        if target == "bug":
            raise AttributeError("'list' object has no attribute 'get'")
        atomic_write_bytes(Path(target), b"\0" * (1 << 20))
    except Exception as exc:
        conn.send(failure_line(exc, "the build", Path(log_dir)))  # type: ignore[attr-defined]


def test_a_worker_process_reports_one_line(tmpfs: Mount, tmp_path: Path) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    tmpfs.fill()
    lines = []
    for target in (str(tmpfs.path / "model.gguf"), "bug"):
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_worker, args=(target, str(tmp_path / "logs"), sender))
        child.start()
        lines.append(receiver.recv())
        child.join(30)
    assert lines[0].startswith(f"the disk is full (writing {tmpfs.path / 'model.gguf'}). Free some space")
    [log] = (tmp_path / "logs").glob("lorag-*.log")
    assert lines[1] == ("the build failed unexpectedly (AttributeError: 'list' object has no attribute 'get'). This is "
                        f"a bug in lorag: the traceback is in {log}; please include it when you report the problem.")
    assert sorted(p.name for p in tmpfs.path.iterdir()) == ["filler.bin"]  # no partial model left behind


def test_a_full_disk_known_only_from_a_child_process_stderr(tmpfs: Mount) -> None:
    import subprocess
    import sys

    from lorag.errors import recognise

    tmpfs.fill()
    script = f"open({str(tmpfs.path / 'out.gguf')!r}, 'wb', buffering=0).write(b'x' * 65536)"
    try:
        subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    except subprocess.CalledProcessError as exc:
        fault = recognise(exc)
    assert fault is not None
    assert fault.message == "the disk is full (CalledProcessError: No space left on device)."
