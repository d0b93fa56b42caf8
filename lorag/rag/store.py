"""The document store: one SQLite file (WAL) with documents, chunks, BM25 tokens and vectors.

Each document is replaced in one transaction, so a crash mid-ingest leaves the previous state.

Usage::

    store = Store(config.store_path)
    for doc in store.list_documents():
        print(doc.path, doc.n_chunks)
    store.close()
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lorag.errors import StoreError

SCHEMA_VERSION = 1
DEFAULT_COLLECTION = "default"
TOKEN_SEP = "\x1f"  # tokens never contain this control character
_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL, mtime REAL NOT NULL,
    size INTEGER NOT NULL, n_chunks INTEGER NOT NULL, added_at TEXT NOT NULL,
    collection TEXT NOT NULL DEFAULT 'default', meta TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL, page INTEGER, start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL,
    tokens TEXT NOT NULL, vector BLOB, page_label TEXT);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
"""


@dataclass(frozen=True)
class DocumentRow:
    """One ingested file."""

    id: int
    path: str
    sha256: str
    n_chunks: int
    added_at: str
    mtime: float = 0.0
    size: int = 0
    collection: str = DEFAULT_COLLECTION
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """One stored chunk with where it came from (``start``/``end`` index the page text)."""

    id: int
    doc_id: int
    source: str
    page: int | None
    start: int
    end: int
    text: str
    page_label: str | None = None


@dataclass(frozen=True)
class NewChunk:
    """A chunk about to be stored, with its BM25 tokens and (optional) vector."""

    text: str
    page: int | None
    start: int
    end: int
    tokens: list[str]
    vector: np.ndarray | None = None
    page_label: str | None = None  # the printed page label (PDF /PageLabels), when it differs from the index


class Store:
    """The SQLite store at ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        _check_writable(self.path)
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}.",
                             "If the file is damaged, move it away and ingest your documents again.") from exc

    def _init_schema(self) -> None:
        with self.transaction():
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    self._db.execute(statement)
            row = self._db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                self._db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise StoreError(f"the store {self.path} has schema version {row[0]}, this lorag needs "
                                 f"{SCHEMA_VERSION}.", "Move it away and ingest your documents again.")
            self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        # Stores written before collections and page labels existed gain the columns with their defaults.
        wanted = {"documents": {"collection": "TEXT NOT NULL DEFAULT 'default'", "meta": "TEXT NOT NULL DEFAULT '{}'"},
                  "chunks": {"page_label": "TEXT"}}
        for table, columns in wanted.items():
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            for name, decl in columns.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

    def transaction(self) -> _Transaction:
        """A write transaction (BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error)."""
        return _Transaction(self._db, self.path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                         (key, value))

    def revision(self) -> int:
        """A counter bumped by every write, so retrieval caches know when to rebuild."""
        return int(self.get_meta("revision") or 0)

    def _bump_revision(self) -> None:
        self.set_meta("revision", str(self.revision() + 1))

    # -- documents ------------------------------------------------------------------------------
    def list_documents(self) -> list[DocumentRow]:
        rows = self._db.execute("SELECT id, path, sha256, n_chunks, added_at, mtime, size, collection, meta FROM documents "
                                "ORDER BY path").fetchall()
        return [_document(r) for r in rows]

    def find_document(self, path: str) -> DocumentRow | None:
        row = self._db.execute("SELECT id, path, sha256, n_chunks, added_at, mtime, size, collection, meta FROM documents "
                               "WHERE path = ?", (path,)).fetchone()
        return None if row is None else _document(row)

    def delete_document(self, doc_id: int) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            self._bump_revision()

    def replace_document(self, path: str, sha256: str, mtime: float, size: int, chunks: Sequence[NewChunk],
                         progress: Callable[[int, int], None] | None = None, *,
                         collection: str = DEFAULT_COLLECTION, meta: dict[str, Any] | None = None) -> int:
        """Store ``path`` with ``chunks``, replacing any previous version, in one transaction; return its id.

        ``meta`` is a JSON-able dict about the document as a whole (pages, OCR pages, skipped front matter).
        """
        with self.transaction():
            self._db.execute("DELETE FROM documents WHERE path = ?", (path,))
            cur = self._db.execute(
                "INSERT INTO documents (path, sha256, mtime, size, n_chunks, added_at, collection, meta) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (path, sha256, mtime, size, len(chunks), _now(), collection, json.dumps(meta or {}, ensure_ascii=False)))
            doc_id = int(cur.lastrowid or 0)
            for i in range(0, len(chunks), 64):
                self._db.executemany(
                    "INSERT INTO chunks (doc_id, ord, page, start, end, text, tokens, vector, page_label) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [_chunk_row(doc_id, i + j, c) for j, c in enumerate(chunks[i : i + 64])])
                if progress:
                    progress(min(i + 64, len(chunks)), len(chunks))
            self._bump_revision()
        return doc_id

    # -- chunks ---------------------------------------------------------------------------------
    def get_chunk(self, chunk_id: int) -> Chunk:
        chunks = self.get_chunks([chunk_id])
        if not chunks:
            raise StoreError(f"chunk {chunk_id} is not in the store {self.path}.")
        return chunks[0]

    def get_chunks(self, chunk_ids: Sequence[int]) -> list[Chunk]:
        """The chunks with these ids, in the order given (missing ids are skipped)."""
        if not chunk_ids:
            return []
        marks = ",".join("?" * len(chunk_ids))
        rows = self._db.execute(
            f"SELECT c.id, c.doc_id, d.path, c.page, c.start, c.end, c.text, c.page_label FROM chunks c "
            f"JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})", list(chunk_ids)).fetchall()
        by_id = {r[0]: Chunk(*r) for r in rows}
        return [by_id[i] for i in chunk_ids if i in by_id]

    def count_chunks(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def iter_tokens(self) -> Iterator[tuple[int, list[str]]]:
        """(chunk id, BM25 tokens) for every chunk, in id order."""
        for chunk_id, tokens in self._db.execute("SELECT id, tokens FROM chunks ORDER BY id"):
            yield chunk_id, tokens.split(TOKEN_SEP) if tokens else []

    def load_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, float32 matrix) of every chunk that has a vector."""
        rows = self._db.execute("SELECT id, vector FROM chunks WHERE vector IS NOT NULL ORDER BY id").fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        return ids, matrix


class _Transaction:
    """Context manager for one write transaction; SQLite errors become StoreError."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _store_error(self._path, exc) from exc

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.OperationalError as err:
                self._db.execute("ROLLBACK")
                raise _store_error(self._path, err) from err
        self._db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError):
            raise _store_error(self._path, exc) from exc


def _store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    if "readonly" in str(exc) or "read-only" in str(exc):
        return StoreError(f"the store {path} is read-only.", "Make the file and its directory writable.")
    return StoreError(f"cannot write the store {path}: {exc}.")


def _check_writable(path: Path) -> None:
    """Fail early, with a clear message, when the store or its directory cannot be written."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store directory {directory}: {exc.strerror}.",
                         "Set store.path in lorag.yaml to a writable place.") from exc
    # WAL mode needs to create <store>-wal and -shm beside the file.
    if not os.access(directory, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise StoreError(f"the store {path} is read-only (its directory or file cannot be written).",
                         "Make it writable or set store.path in lorag.yaml to a writable place.")


def _chunk_row(doc_id: int, ordinal: int, c: NewChunk) -> tuple[Any, ...]:
    blob = None if c.vector is None or c.vector.size == 0 else np.asarray(c.vector, dtype=np.float32).tobytes()
    return (doc_id, ordinal, c.page, c.start, c.end, c.text, TOKEN_SEP.join(c.tokens), blob, c.page_label)


def _document(row: Sequence[Any]) -> DocumentRow:
    return DocumentRow(*row[:7], collection=row[7], meta=json.loads(row[8] or "{}"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
