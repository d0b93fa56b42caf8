"""The SQLite store: schema, round trips, read-only locations, crash safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lorag.config import Config
from lorag.errors import StoreError
from lorag.rag.ingest import ingest_paths
from lorag.rag.store import SCHEMA_VERSION, NewChunk, Store


def test_round_trip_and_revision(tmp_path: Path) -> None:
    with Store(tmp_path / "s" / "x.db") as store:
        assert store.revision() == 0
        vec = np.array([0.6, 0.8], dtype=np.float32)
        doc_id = store.replace_document("/d/a.txt", "abc", 1.5, 10, [
            NewChunk("一つ目", None, 0, 3, ["一つ", "目"], vec), NewChunk("二つ目", 2, 4, 7, [], vec)])
        assert store.revision() == 1
        [doc] = store.list_documents()
        assert (doc.id, doc.path, doc.sha256, doc.n_chunks, doc.size) == (doc_id, "/d/a.txt", "abc", 2, 10)
        chunk = store.get_chunk(2)
        assert (chunk.source, chunk.page, chunk.start, chunk.end, chunk.text) == ("/d/a.txt", 2, 4, 7, "二つ目")
        assert list(store.iter_tokens()) == [(1, ["一つ", "目"]), (2, [])]
        ids, matrix = store.load_vectors()
        assert ids.tolist() == [1, 2] and matrix.tolist() == [[0.6000000238418579, 0.800000011920929]] * 2
        store.delete_document(doc_id)
        assert store.list_documents() == [] and store.count_chunks() == 0 and store.revision() == 2


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    Store(tmp_path / "x.db").close()
    db = sqlite3.connect(tmp_path / "x.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "x.db").close()
    db = sqlite3.connect(tmp_path / "x.db")
    db.execute("UPDATE schema_version SET version = 99")
    db.execute("UPDATE meta SET value = '0.9.0' WHERE key = 'lorag_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError) as err:
        Store(tmp_path / "x.db")
    assert str(err.value) == (f"the store {tmp_path / 'x.db'} was written by lorag 0.9.0 with schema version 99; "
                              f"this lorag (0.1.0) reads schema versions up to {SCHEMA_VERSION}. Upgrade lorag "
                              "(pip install -U lorag) or point store.path at another store.")


def test_missing_chunk(tmp_path: Path) -> None:
    with Store(tmp_path / "x.db") as store, pytest.raises(StoreError, match="chunk 7 is not in the store"):
        store.get_chunk(7)


def test_read_only_directory_is_a_clear_error() -> None:
    # /proc/sys is read-only even for root, unlike a chmod-ed temp directory.
    with pytest.raises(StoreError, match=r"the store /proc/sys/lorag\.db is read-only"):
        Store(Path("/proc/sys/lorag.db"))


def test_read_only_directory_by_permissions(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: directory permissions do not stop writes")
        with pytest.raises(StoreError, match="is read-only"):
            Store(ro / "x.db")
    finally:
        ro.chmod(0o755)


def test_store_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot create the store directory"):
        Store(tmp_path / "file" / "x.db")


def test_garbage_store_file(tmp_path: Path) -> None:
    (tmp_path / "x.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"cannot open the store .* move it away"):
        Store(tmp_path / "x.db")


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from lorag.config import load_config
    from lorag.rag.ingest import ingest_paths

    def progress(event):
        if event["stage"] == "store" and event["path"]:
            # Inside the document's transaction: old chunks deleted, new ones written, not committed.
            print("IN-TRANSACTION", flush=True)
            time.sleep(120)

    ingest_paths(load_config(sys.argv[1]), [sys.argv[2]], progress=progress)
""")


def test_sigkill_mid_ingest_keeps_previous_state(rag_config: Config, tmp_path: Path) -> None:
    doc = tmp_path / "規程.txt"
    doc.write_text("旧版です。経費は翌月10日までに申請します。\n", encoding="utf-8")
    report = ingest_paths(rag_config, [doc])
    assert report.added == [str(doc)]
    with Store(rag_config.store_path) as store:
        before = [(d.sha256, d.n_chunks) for d in store.list_documents()]
        old_text = [store.get_chunk(cid).text for cid, _ in store.iter_tokens()]

    doc.write_text("新版です。" + "経費は翌月15日までに申請します。" * 40 + "\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(rag_config.path), str(doc)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "IN-TRANSACTION"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with Store(rag_config.store_path) as store:
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [(d.sha256, d.n_chunks) for d in store.list_documents()] == before
        assert [store.get_chunk(cid).text for cid, _ in store.iter_tokens()] == old_text
    # The interrupted file is simply ingested again next time.
    assert ingest_paths(rag_config, [doc]).updated == [str(doc)]
