"""A read-only file system, for real (a tmpfs remounted ro): writes are refused in one line, nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import FAST_CONFIG, Mount, documents, lorag, one_error_line, settle


@pytest.fixture
def frozen(tmpfs: Mount, tmp_path: Path) -> Path:
    """A config and a store with one document on a tmpfs that is then remounted read-only."""
    (tmpfs.path / "lorag.yaml").write_text(FAST_CONFIG, encoding="utf-8")
    doc = tmp_path / "規程.txt"
    doc.write_text("有給休暇は年20日です。\n", encoding="utf-8")
    assert lorag("ingest", str(doc), cwd=tmpfs.path).returncode == 0
    settle(tmpfs.path / ".lorag" / "lorag.db")
    tmpfs.read_only()
    return tmpfs.path


def test_config_write_is_refused(frozen: Path) -> None:
    before = (frozen / "lorag.yaml").read_bytes()
    line = one_error_line(lorag("init", "--force", cwd=frozen))
    assert line == (f"error: {frozen / 'lorag.yaml'} is read-only; the config was not changed. Make it writable and "
                    "try again.")
    assert (frozen / "lorag.yaml").read_bytes() == before


def test_ingest_is_refused_and_the_store_kept(frozen: Path, tmp_path: Path) -> None:
    store = frozen / ".lorag" / "lorag.db"
    before = documents(store, immutable=True)
    doc = tmp_path / "新しい.txt"
    doc.write_text("新しい文書です。\n", encoding="utf-8")
    line = one_error_line(lorag("ingest", str(doc), cwd=frozen))
    assert "read-only" in line and str(store) in line, line
    assert documents(store, immutable=True) == before


def test_search_on_a_read_only_store_is_one_line(frozen: Path) -> None:
    proc = lorag("search", "有給", cwd=frozen)
    if proc.returncode == 0:  # reading a read-only store is allowed to work
        assert proc.stdout.startswith("1. ")
        return
    line = one_error_line(proc)
    assert "read-only" in line and "damaged" not in line, line


def test_a_new_store_on_a_read_only_disk(tmpfs: Mount, tmp_path: Path) -> None:
    (tmpfs.path / "lorag.yaml").write_text(FAST_CONFIG, encoding="utf-8")
    tmpfs.read_only()
    doc = tmp_path / "a.txt"
    doc.write_text("テスト\n", encoding="utf-8")
    line = one_error_line(lorag("ingest", str(doc), cwd=tmpfs.path))
    expected = f"error: cannot create the store directory {tmpfs.path / '.lorag'}: Read-only file system"
    assert line.startswith(expected), line
    assert sorted(p.name for p in tmpfs.path.iterdir()) == ["lorag.yaml"]


def test_traceback_log_on_a_read_only_cache(tmpfs: Mount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from lorag.crashlog import failure_line

    tmpfs.read_only()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmpfs.path / "cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    line = failure_line(KeyError("x"), "`lorag search`")
    [log] = (tmp_path / "lorag-logs").glob("lorag-*.log")
    assert line.endswith(f"the traceback is in {log}; please include it when you report the problem.")
