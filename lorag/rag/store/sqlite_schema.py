"""The SQLite store's schema, and the one-time upgrade of version 1 stores (with a backup, in one transaction).

Version 1 kept one vector blob per chunk row and no full-text index: every process rebuilt BM25 from all tokens.
Version 2 adds an FTS5 index over the Sudachi tokens (kept by triggers) and one vector block per document.
Version 3 adds ``term_df``, how many chunks hold each term: FTS5's vocabulary table counts that by reading the
term's whole posting list, 1-2 ms per common term and query (bench/store_scale.py).
"""

from __future__ import annotations

import logging
import sqlite3
import unicodedata
import uuid
from pathlib import Path

import numpy as np

import lorag
from lorag.errors import StoreError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
# Tokens are joined by U+001F (a control character, category Cc): with every other category counted as part of a
# token, FTS5 splits exactly where the tokenizer did, so "apt-get" and "c++" stay one term each.
FTS_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* N* Co M* P* S*'"

_CORE = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL, mtime REAL NOT NULL,
    size INTEGER NOT NULL, n_chunks INTEGER NOT NULL, added_at TEXT NOT NULL,
    collection TEXT NOT NULL DEFAULT 'default', meta TEXT NOT NULL DEFAULT '{}', path_key TEXT,
    n_tokens INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL, page INTEGER, start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL,
    tokens TEXT NOT NULL, page_label TEXT);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id)
"""
_V2 = f"""
CREATE INDEX IF NOT EXISTS documents_key ON documents(path_key);
CREATE INDEX IF NOT EXISTS documents_collection ON documents(collection);
CREATE TABLE IF NOT EXISTS vectors (
    doc_id INTEGER PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE, collection TEXT NOT NULL,
    gen INTEGER NOT NULL, dim INTEGER NOT NULL, ids BLOB NOT NULL, data BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_fts USING fts5(tokens, content='', tokenize="{FTS_TOKENIZER}");
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_vocab USING fts5vocab(chunk_fts, row);
CREATE TRIGGER IF NOT EXISTS chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunk_fts(rowid, tokens) VALUES (new.id, new.tokens); END;
CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunk_fts(chunk_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); END
"""
_V3 = """
CREATE TABLE IF NOT EXISTS term_df (term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID
"""


def stored_version(db: sqlite3.Connection) -> int | None:
    """The schema version of the open database, or None for an empty one."""
    has = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if not has:
        return None
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return None if row is None else int(row[0])


def check_readable_schema(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a read-only store this lorag cannot read as it is (older schemas need an upgrade, which writes)."""
    version = stored_version(db)
    if version == SCHEMA_VERSION:
        return
    if version is not None and version > SCHEMA_VERSION:
        raise _newer_store(db, path, version)
    raise StoreError(f"the store {path} is read-only and " + ("empty." if version is None else
                     f"has schema version {version}; it must be upgraded to {SCHEMA_VERSION} first."),
                     "Make the store and its folder writable and run any lorag command once.")


def ensure_schema(db: sqlite3.Connection, path: Path) -> None:
    """Create, check or upgrade the schema; only creation and upgrades take the write lock."""
    version = stored_version(db)
    if version == SCHEMA_VERSION:
        return
    if version is not None and version > SCHEMA_VERSION:
        raise _newer_store(db, path, version)
    if version == 1:  # version 2 -> 3 only adds a table: no backup needed
        backup = _backup(db, path)
        log.warning("upgrading the store %s to schema version %d (backup: %s)", path, SCHEMA_VERSION, backup)
    db.execute("BEGIN IMMEDIATE")
    try:
        _create_or_upgrade(db, path)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _create_or_upgrade(db: sqlite3.Connection, path: Path) -> None:
    version = stored_version(db)  # again, under the write lock: another process may have done it meanwhile
    if version == SCHEMA_VERSION:
        return
    if version is not None and version > SCHEMA_VERSION:
        raise _newer_store(db, path, version)
    _run(db, _CORE)
    if version == 1:
        _upgrade_v1(db)
    _run(db, _V2)
    _run(db, _V3)
    if version in (1, 2):  # counted once from the index; from then on kept by every write
        db.execute("INSERT INTO term_df SELECT term, doc FROM chunk_vocab WHERE doc > 0")
    db.execute("DELETE FROM schema_version")
    db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
    db.execute("INSERT INTO meta VALUES ('lorag_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
               (lorag.__version__,))
    db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))  # names its vectors file


def _run(db: sqlite3.Connection, script: str) -> None:
    for statement in script.strip().split(";\n"):
        if statement.strip():
            db.execute(statement)


def _upgrade_v1(db: sqlite3.Connection) -> None:
    """Move per-chunk vectors into per-document blocks, index the tokens, and add the v2 columns."""
    wanted = {"documents": {"collection": "TEXT NOT NULL DEFAULT 'default'", "meta": "TEXT NOT NULL DEFAULT '{}'",
                            "path_key": "TEXT", "n_tokens": "INTEGER NOT NULL DEFAULT 0"},
              "chunks": {"page_label": "TEXT"}}
    for table, columns in wanted.items():
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        for name, decl in columns.items():
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
    for doc_id, path in db.execute("SELECT id, path FROM documents").fetchall():
        n_tokens = sum(len(t.split("\x1f")) if t else 0
                       for (t,) in db.execute("SELECT tokens FROM chunks WHERE doc_id = ?", (doc_id,)))
        db.execute("UPDATE documents SET path_key = ?, n_tokens = ? WHERE id = ?",
                   (unicodedata.normalize("NFC", path), n_tokens, doc_id))
    _run(db, _V2)
    revision = int((db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone() or [0])[0])
    docs = db.execute("SELECT id, collection FROM documents ORDER BY id").fetchall()
    for doc_id, collection in docs:
        rows = db.execute("SELECT id, vector FROM chunks WHERE doc_id = ? AND vector IS NOT NULL ORDER BY id",
                          (doc_id,)).fetchall()
        if rows:
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            dim = len(rows[0][1]) // 4
            db.execute("INSERT INTO vectors VALUES (?, ?, ?, ?, ?, ?)",
                       (doc_id, collection, revision + 1, dim, ids.tobytes(), b"".join(r[1] for r in rows)))
    db.execute("INSERT INTO chunk_fts(rowid, tokens) SELECT id, tokens FROM chunks")
    db.execute("ALTER TABLE chunks DROP COLUMN vector")
    db.execute("INSERT INTO meta VALUES ('revision', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
               (str(revision + 1),))


def _backup(db: sqlite3.Connection, path: Path) -> Path:
    """Copy the whole database beside itself (``lorag.db.v1.bak``, numbered if that exists)."""
    target = path.with_name(path.name + ".v1.bak")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.v1.{n}.bak")
    try:
        dest = sqlite3.connect(str(target))
        with dest:
            db.backup(dest)
        dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, whatever the store's mode
        dest.close()
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise StoreError(f"cannot back up {path} before upgrading it: {exc}; nothing was changed.",
                         "Free some disk space (the backup is as large as the store) and try again.") from exc
    return target


def _newer_store(db: sqlite3.Connection, path: Path, version: int) -> StoreError:
    row = db.execute("SELECT value FROM meta WHERE key = 'lorag_version'").fetchone()
    by = f" by lorag {row[0]}" if row else ""
    return StoreError(f"the store {path} was written{by} with schema version {version}; this lorag "
                      f"({lorag.__version__}) reads schema versions up to {SCHEMA_VERSION}.",
                      "Upgrade lorag (pip install -U lorag) or point store.path at another store.")
