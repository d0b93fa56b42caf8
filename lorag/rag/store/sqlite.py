"""The SQLite store: one file (WAL) with documents, chunks, an FTS5 index over their tokens, and vector blocks.

Each document is replaced in one transaction, so a crash mid-ingest leaves the previous state. Readers never
take the write lock, so searches run while another process ingests.

Usage::

    with Store(config.store_path) as store:      # a SQLiteStore
        print(store.collections())
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lorag.errors import StoreError
from lorag.rag.store.base import (
    DEFAULT_COLLECTION,
    TOKEN_SEP,
    Chunk,
    CollectionInfo,
    DocumentRow,
    NewChunk,
    ProgressFn,
    Ranking,
    Store,
    now_iso,
    path_key,
)
from lorag.rag.store.sqlite_connect import BUSY_TIMEOUT_S, Transaction, check_writable, connect, sqlite_error
from lorag.rag.store.sqlite_lexical import count_terms, open_instances, rank_candidates
from lorag.rag.store.sqlite_schema import SCHEMA_VERSION, check_readable_schema, ensure_schema
from lorag.rag.store.vector_file import vector_path
from lorag.rag.store.vectors import snapshot_for

log = logging.getLogger(__name__)
MMAP_BYTES = 1 << 30  # address space only; pages come from the OS page cache
_DOC_COLUMNS = "id, path, sha256, n_chunks, added_at, mtime, size, collection, meta"

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]


class SQLiteStore(Store):
    """The SQLite store at ``path`` (created on first use; version 1 stores are upgraded on first open)."""

    path: Path
    # Postings cost well under a microsecond each here (sqlite_lexical.py): twice the default budget brought the
    # 100k bench's BM25 top 1 to the exact one for 119 of 146 queries instead of 106, for 0.5 ms more.
    candidate_postings = 8_000

    def __init__(self, path: Path | str) -> None:
        from lorag.rag.store.factory import sqlite_path

        self.path = sqlite_path(path)
        self.read_only = not check_writable(self.path)
        try:
            self._db = connect(self.path, self.read_only)
            if not self.read_only:
                mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
                if mode != "wal":  # switching takes a lock: do it only once, when the file is new
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            # Searches read FTS postings and chunk rows all over the file: mapped, they cost no read() call each.
            self._db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
            if self.read_only:
                check_readable_schema(self._db, self.path)
            else:
                ensure_schema(self._db, self.path)
            self._store_id = self.get_meta("store_id") or self._new_store_id()
        except StoreError:
            self._db.close()
            raise
        except sqlite3.OperationalError as exc:
            self._db.close()
            raise sqlite_error(self.path, exc) from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}.",
                             "If the file is damaged, move it away and ingest your documents again.") from exc
        self._key = str(self.path.resolve())
        self._instances_open = False
        self._vector_file = None if self.read_only else vector_path(self.path)

    def _new_store_id(self) -> str | None:
        """Name a store made before stores had ids (for its vectors file); skipped while another process writes."""
        if self.read_only:
            return None
        store_id = uuid.uuid4().hex
        try:
            self._db.execute("PRAGMA busy_timeout = 0")
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (store_id,))
        except sqlite3.OperationalError:
            return None
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        return self.get_meta("store_id")

    def transaction(self) -> Transaction:
        """A write transaction (BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error)."""
        return Transaction(self._db, self.path)

    def close(self) -> None:
        self._db.close()

    # -- metadata -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._read("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value))

    def _bump_revision(self) -> None:
        self.set_meta("revision", str(self.revision() + 1))

    # -- documents ------------------------------------------------------------------------------
    def list_documents(self, collection: str | None = None) -> list[DocumentRow]:
        where, args = ("WHERE collection = ?", [collection]) if collection is not None else ("", [])
        rows = self._read(f"SELECT {_DOC_COLUMNS} FROM documents {where} ORDER BY path", args).fetchall()
        return [DocumentRow.from_row(r) for r in rows]

    def find_document(self, path: str) -> DocumentRow | None:
        row = self._read(f"SELECT {_DOC_COLUMNS} FROM documents WHERE path = ?", (path,)).fetchone()
        if row is None:
            row = self._read(f"SELECT {_DOC_COLUMNS} FROM documents WHERE path_key = ? ORDER BY id",
                             (path_key(path),)).fetchone()
        return None if row is None else DocumentRow.from_row(row)

    def delete_document(self, doc_id: int) -> None:
        with self.transaction():
            self._count_terms(doc_id, -1)
            self._db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            self._bump_revision()

    def replace_document(self, path: str, sha256: str, mtime: float, size: int, chunks: Sequence[NewChunk],
                         progress: ProgressFn | None = None, *, collection: str = DEFAULT_COLLECTION,
                         meta: dict[str, Any] | None = None, added_at: str | None = None) -> int:
        """Store ``path`` with ``chunks``, replacing any previous version, in one transaction; return its id.

        ``meta`` is a JSON-able dict about the document as a whole (pages, OCR pages, skipped front matter).
        """
        from lorag.rag.store.base import validate_collection

        collection = validate_collection(collection)
        with self.transaction():
            old = self._db.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
            if old is not None:
                self._count_terms(int(old[0]), -1)
            self._db.execute("DELETE FROM documents WHERE path = ?", (path,))
            cur = self._db.execute(
                "INSERT INTO documents (path, path_key, sha256, mtime, size, n_chunks, added_at, collection, meta, "
                "n_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (path, path_key(path), sha256, mtime, size, len(chunks), added_at or now_iso(), collection,
                 json.dumps(meta or {}, ensure_ascii=False), sum(len(c.tokens) for c in chunks)))
            doc_id = int(cur.lastrowid or 0)
            for i in range(0, len(chunks), 256):
                self._db.executemany(
                    "INSERT INTO chunks (doc_id, ord, page, start, end, text, tokens, page_label) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [_chunk_row(doc_id, i + j, c)
                                                        for j, c in enumerate(chunks[i : i + 256])])
                if progress:
                    progress(min(i + 256, len(chunks)), len(chunks))
            self._add_terms(_term_counts(c.tokens for c in chunks), 1)
            ids = self.chunk_ids(doc_id)
            self._write_vectors(doc_id, collection, ids, chunks)
            self._bump_revision()
        return doc_id

    def _count_terms(self, doc_id: int, sign: int) -> None:
        """Add (1) or remove (-1) the document's chunks in ``term_df``."""
        rows = self._db.execute("SELECT tokens FROM chunks WHERE doc_id = ?", (doc_id,))
        self._add_terms(_term_counts(t.split(TOKEN_SEP) if t else [] for (t,) in rows), sign)

    def _add_terms(self, counts: dict[str, int], sign: int) -> None:
        self._db.executemany("INSERT INTO term_df VALUES (?, ?) ON CONFLICT(term) DO UPDATE SET df = df + excluded.df",
                             [(t, sign * n) for t, n in counts.items()])
        if sign < 0:
            self._db.execute("DELETE FROM term_df WHERE df <= 0")

    def _write_vectors(self, doc_id: int, collection: str, ids: list[int], chunks: Sequence[NewChunk]) -> None:
        rows = [(cid, c.vector) for cid, c in zip(ids, chunks, strict=True) if c.vector is not None and c.vector.size]
        if not rows:
            return
        matrix = np.stack([np.asarray(v, dtype=np.float32).ravel() for _, v in rows])
        self._db.execute("INSERT INTO vectors VALUES (?, ?, ?, ?, ?, ?)",
                         (doc_id, collection, self.revision() + 1, matrix.shape[1],
                          np.array([cid for cid, _ in rows], dtype=np.int64).tobytes(), matrix.tobytes()))

    def collections(self) -> list[CollectionInfo]:
        rows = self._read("SELECT collection, COUNT(*), COALESCE(SUM(n_chunks), 0) FROM documents "
                          "GROUP BY collection ORDER BY collection").fetchall()
        return [CollectionInfo(str(name), int(docs), int(chunks)) for name, docs, chunks in rows]

    # -- chunks ---------------------------------------------------------------------------------
    def get_chunks(self, chunk_ids: Sequence[int]) -> list[Chunk]:
        if not chunk_ids:
            return []
        marks = ",".join("?" * len(chunk_ids))
        rows = self._read(
            f"SELECT c.id, c.doc_id, d.path, c.page, c.start, c.end, c.text, c.page_label FROM chunks c "
            f"JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})", list(chunk_ids)).fetchall()
        by_id = {r[0]: Chunk(*r) for r in rows}
        return [by_id[i] for i in chunk_ids if i in by_id]

    def count_chunks(self, collection: str | None = None) -> int:
        if collection is None:
            return int(self._read("SELECT COUNT(*) FROM chunks").fetchone()[0])
        return int(self._read("SELECT COALESCE(SUM(n_chunks), 0) FROM documents WHERE collection = ?",
                              (collection,)).fetchone()[0])

    def document_chunks(self, doc_id: int) -> list[NewChunk]:
        rows = self._read("SELECT id, page, start, end, text, tokens, page_label FROM chunks WHERE doc_id = ? "
                          "ORDER BY ord", (doc_id,)).fetchall()
        vectors: dict[int, np.ndarray] = {}
        block = self._read("SELECT dim, ids, data FROM vectors WHERE doc_id = ?", (doc_id,)).fetchone()
        if block is not None:
            matrix = np.frombuffer(block[2], dtype=np.float32).reshape(-1, block[0])
            vectors = dict(zip(np.frombuffer(block[1], dtype=np.int64).tolist(), matrix, strict=True))
        return [NewChunk(text, page, start, end, tokens.split(TOKEN_SEP) if tokens else [], vectors.get(cid),
                         label) for cid, page, start, end, text, tokens, label in rows]

    def chunk_ids(self, doc_id: int) -> list[int]:
        return [int(r[0]) for r in self._read("SELECT id FROM chunks WHERE doc_id = ? ORDER BY ord", (doc_id,))]

    def iter_tokens(self) -> Iterator[tuple[int, list[str]]]:
        for chunk_id, tokens in self._read("SELECT id, tokens FROM chunks ORDER BY id"):
            yield chunk_id, tokens.split(TOKEN_SEP) if tokens else []

    def load_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, float32 matrix) of every chunk that has a vector, in id order."""
        snap = snapshot_for(self._key, self._db, self._vector_file, self._store_id)
        order = np.argsort(snap.ids, kind="stable")
        return snap.ids[order], snap.matrix[order]

    # -- search ---------------------------------------------------------------------------------
    def term_stats(self, terms: Sequence[str]) -> tuple[int, float, dict[str, int]]:
        n_rows, n_tokens = self._read("SELECT COALESCE(SUM(n_chunks), 0), COALESCE(SUM(n_tokens), 0) "
                                      "FROM documents").fetchone()
        dfs: dict[str, int] = {}
        for i in range(0, len(terms), 500):
            part = list(terms[i : i + 500])
            marks = ",".join("?" * len(part))
            dfs.update(self._read(f"SELECT term, df FROM term_df WHERE term IN ({marks})", part).fetchall())
        return int(n_rows), (n_tokens / n_rows if n_rows and n_tokens else 1.0), dfs

    def lexical_candidates(self, terms: Sequence[str], n: int, collection: str | None = None) -> list[int]:
        query = fts_query(terms)
        if not query:
            return []
        args: Sequence[Any]
        if collection is None:
            sql, args = "SELECT rowid FROM chunk_fts WHERE chunk_fts MATCH ? ORDER BY rank LIMIT ?", (query, n)
        else:
            sql, args = ("SELECT chunk_fts.rowid FROM chunk_fts JOIN chunks c ON c.id = chunk_fts.rowid "
                         "JOIN documents d ON d.id = c.doc_id WHERE chunk_fts MATCH ? AND d.collection = ? "
                         "ORDER BY rank LIMIT ?", (query, collection, n))
        return [int(r[0]) for r in self._read(sql, args).fetchall()]

    def chunk_tokens(self, chunk_ids: Sequence[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for i in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[i : i + 500])
            marks = ",".join("?" * len(part))
            for cid, tokens in self._read(f"SELECT id, tokens FROM chunks WHERE id IN ({marks})", part):
                out[int(cid)] = tokens.split(TOKEN_SEP) if tokens else []
        return out

    def weighted_candidates(self, weights: dict[str, float], n: int, collection: str | None = None) -> list[int]:
        if not self._instances_open:
            open_instances(self._db)
            self._instances_open = True
        try:
            return rank_candidates(self._db, weights, n, collection)
        except sqlite3.OperationalError as exc:
            raise sqlite_error(self.path, exc) from exc

    def term_counts(self, chunk_ids: Sequence[int], terms: Sequence[str]) -> dict[int, tuple[int, dict[str, int]]]:
        out: dict[int, tuple[int, dict[str, int]]] = {}
        for i in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[i : i + 500])
            marks = ",".join("?" * len(part))
            out.update(count_terms(self._read(f"SELECT id, tokens FROM chunks WHERE id IN ({marks})", part)
                                   .fetchall(), terms))
        return out

    def dense_search(self, vector: np.ndarray, k: int, collection: str | None = None) -> Ranking:
        return snapshot_for(self._key, self._db, self._vector_file, self._store_id).search(vector, k, collection)

    def dense_searcher(self, collection: str | None = None) -> Callable[[np.ndarray, int], Ranking]:
        """``dense_search`` over the vectors as they are now, callable from any thread (it uses no connection)."""
        snapshot = snapshot_for(self._key, self._db, self._vector_file, self._store_id)
        return lambda vector, k: snapshot.search(vector, k, collection)

    def dense_search_many(self, vectors: np.ndarray, k: int, collection: str | None = None) -> list[Ranking]:
        snapshot = snapshot_for(self._key, self._db, self._vector_file, self._store_id)
        return snapshot.search_many(vectors, k, collection)

    # -- plumbing -------------------------------------------------------------------------------
    def _read(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.OperationalError as exc:
            raise sqlite_error(self.path, exc) from exc

    def _write(self, sql: str, args: Sequence[Any] = ()) -> None:
        self._read(sql, args)


def fts_query(tokens: Sequence[str]) -> str:
    """An FTS5 expression matching any of ``tokens`` (each quoted; repeated tokens weigh more, as in BM25)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in tokens if t.strip() and TOKEN_SEP not in t)


def _term_counts(token_lists: Iterable[Sequence[str]]) -> dict[str, int]:
    """How many of the chunks hold each term (the FTS5 token rule: empty and separator-bearing tokens never
    index)."""
    counts: dict[str, int] = {}
    for tokens in token_lists:
        for t in set(tokens):
            counts[t] = counts.get(t, 0) + 1
    return counts


def _chunk_row(doc_id: int, ordinal: int, c: NewChunk) -> tuple[Any, ...]:
    return (doc_id, ordinal, c.page, c.start, c.end, c.text, TOKEN_SEP.join(c.tokens), c.page_label)
