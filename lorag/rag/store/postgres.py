"""The PostgreSQL store: documents and chunks in tables, vectors in pgvector with HNSW, BM25 over a tsvector.

Several ``lorag serve`` processes on several machines can share one database: writers serialise on the revision
row, readers never wait, and every process notices a write through the revision counter.

Usage::

    with Store("postgresql://lorag:secret@db.internal:5432/lorag") as store:    # a PostgresStore
        print(store.collections())
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

import lorag
from lorag.errors import StoreError
from lorag.rag.store import pg_copy, pg_dense, pg_indexes, pg_postings, pg_sql, pg_terms
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
    validate_collection,
)
from lorag.rag.store.factory import redact
from lorag.rag.store.sqlite_lexical import count_terms

log = logging.getLogger(__name__)
_DOC_COLUMNS = "id, path, sha256, n_chunks, added_at, mtime, size, collection, meta"
_share_cache: dict[tuple[str, int, str], float] = {}


class PostgresStore(Store):
    """The store in the PostgreSQL database at ``url`` (tables are created on first use)."""

    path: str

    def __init__(self, url: str | Path, *, connect_timeout: int = 5) -> None:
        import psycopg

        self.url = str(url)
        self.path = redact(self.url)
        self._bulk = False
        self._bulk_dims: set[int] = set()  # vector sizes whose HNSW index a bulk load must build
        self.index_seconds: dict[str, float] = {}  # of the last bulk load's index builds
        self._last_stats: tuple[int, float, dict[str, int]] = (0, 1.0, {})
        try:
            self._db = psycopg.connect(self.url, autocommit=True, connect_timeout=connect_timeout)
        except psycopg.Error as exc:
            raise pg_sql.connection_error(self.path, exc) from exc
        try:
            self._setup()
        except BaseException:
            self._db.close()
            raise

    def _setup(self) -> None:
        import psycopg
        from pgvector.psycopg import register_vector

        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(7411990)")  # one process creates the schema
            if not self._db.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
                try:
                    with self._db.transaction():
                        self._db.execute("CREATE EXTENSION IF NOT EXISTS vector")
                except psycopg.Error as exc:
                    raise pg_sql.pgvector_missing(self.path, exc) from exc
            if self._check_version() != pg_sql.SCHEMA_VERSION:
                # Only a new or older store runs the DDL: CREATE INDEX IF NOT EXISTS would lock the chunks table.
                self._db.execute(pg_sql.SCHEMA)
                self._db.execute(pg_terms.SCHEMA)
                self._db.execute(pg_postings.SCHEMA)
                if not self._db.execute("SELECT 1 FROM lorag_schema").fetchone():
                    self._db.execute("INSERT INTO lorag_schema VALUES (%s)", (pg_sql.SCHEMA_VERSION,))
                    self.set_meta("lorag_version", lorag.__version__)
                self._db.execute("INSERT INTO lorag_meta VALUES ('revision', '0') ON CONFLICT DO NOTHING")
            if not self._bulk_running():
                self._repair()
        register_vector(self._db)
        # Enough HNSW candidates for the fusion depth; pgvector >= 0.8 also keeps scanning when a collection
        # filter drops candidates (older versions widen ef_search or scan exactly, see pg_dense).
        self._db.execute(f"SET hnsw.ef_search = {pg_dense.EF_SEARCH}")
        version = str(self._db.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0])  # type: ignore[index]
        self.iterative_scan = tuple(int(x) for x in version.split(".")[:2]) >= (0, 8)
        if self.iterative_scan:
            self._db.execute("SET hnsw.iterative_scan = relaxed_order")

    def _bulk_running(self) -> bool:
        """Whether a bulk load (which drops and rebuilds the search indexes) is under way in a live session."""
        row = self._db.execute("SELECT pg_try_advisory_lock_shared(%s)", (pg_sql.BULK_LOCK,)).fetchone()
        if row and row[0]:
            self._db.execute("SELECT pg_advisory_unlock_shared(%s)", (pg_sql.BULK_LOCK,))
            return False
        return True

    def _repair(self) -> None:
        """What a killed bulk load or an older schema left out: the GIN index and exact BM25 statistics."""
        if not self._db.execute("SELECT to_regclass('lorag_chunks_tsv')").fetchone()[0]:  # type: ignore[index]
            self._db.execute(pg_sql.GIN_INDEX)
        if self.get_meta("term_stats") != "exact":
            pg_terms.rebuild(self._q)
            self.set_meta("term_stats", "exact")
        if self.get_meta("postings") != "exact":  # a schema v2 store, or a bulk load killed before its end
            chunks = pg_terms.totals(self._q)[0]
            if chunks:
                log.warning("the store %s lacks the lexical postings of schema version %d: writing those of %s "
                            "chunks (once; about 3 minutes per million chunks)", self.path, pg_sql.SCHEMA_VERSION,
                            f"{chunks:,}")
            pg_postings.rebuild(self._q)
            self.set_meta("postings", "exact")
        self._db.execute("UPDATE lorag_schema SET version = %s WHERE version < %s",
                         (pg_sql.SCHEMA_VERSION, pg_sql.SCHEMA_VERSION))

    def _check_version(self) -> int | None:
        """The store's schema version (None for a new one); refuses one written by a newer lorag."""
        if not self._db.execute("SELECT to_regclass('lorag_schema')").fetchone()[0]:  # type: ignore[index]
            return None
        row = self._db.execute("SELECT version FROM lorag_schema").fetchone()
        if row and int(row[0]) > pg_sql.SCHEMA_VERSION:
            by = self._db.execute("SELECT value FROM lorag_meta WHERE key = 'lorag_version'").fetchone()
            who = f" by lorag {by[0]}" if by else ""
            raise StoreError(f"the store {self.path} was written{who} with schema version {row[0]}; this lorag "
                             f"({lorag.__version__}) reads schema versions up to {pg_sql.SCHEMA_VERSION}.",
                             "Upgrade lorag (pip install -U lorag) or point store.url at another database.")
        return int(row[0]) if row else None

    def transaction(self) -> AbstractContextManager[Any]:
        return self._db.transaction()

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Drop the GIN and HNSW indexes, load, then build them once: far faster than upkeep per row."""
        self._q("SELECT pg_advisory_lock(%s)", (pg_sql.BULK_LOCK,))
        try:
            with self.transaction():
                self.set_meta("term_stats", "stale")  # until the rebuild at the end (a kill leaves it stale)
                self.set_meta("postings", "stale")
                for name in pg_indexes.search_index_names(self._q):
                    self._q(f'DROP INDEX IF EXISTS "{name}"')
                    if name.startswith("lorag_chunks_hnsw_"):
                        self._bulk_dims.add(int(name.rsplit("_", 1)[1]))
            self._bulk = True
            try:
                yield
            finally:
                self._bulk = False
                self.index_seconds = pg_indexes.build(self, sorted(self._bulk_dims))
                self._bulk_dims.clear()
        finally:
            self._q("SELECT pg_advisory_unlock(%s)", (pg_sql.BULK_LOCK,))

    def close(self) -> None:
        self._db.close()

    # -- metadata -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._q("SELECT value FROM lorag_meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._q("INSERT INTO lorag_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value))

    def _bump_revision(self) -> None:
        self._q("UPDATE lorag_meta SET value = (value::bigint + 1)::text WHERE key = 'revision'")

    def _lock_writers(self) -> None:
        self._q("SELECT value FROM lorag_meta WHERE key = 'revision' FOR UPDATE")

    # -- documents ------------------------------------------------------------------------------
    def list_documents(self, collection: str | None = None) -> list[DocumentRow]:
        where, args = ("WHERE collection = %s", (collection,)) if collection is not None else ("", ())
        rows = self._q(f'SELECT {_DOC_COLUMNS} FROM lorag_documents {where} ORDER BY path COLLATE "C"', args)
        return [DocumentRow.from_row(r) for r in rows.fetchall()]

    def find_document(self, path: str) -> DocumentRow | None:
        row = self._q(f"SELECT {_DOC_COLUMNS} FROM lorag_documents WHERE path = %s", (path,)).fetchone()
        if row is None:
            row = self._q(f"SELECT {_DOC_COLUMNS} FROM lorag_documents WHERE path_key = %s ORDER BY id",
                          (path_key(path),)).fetchone()
        return None if row is None else DocumentRow.from_row(row)

    def delete_document(self, doc_id: int) -> None:
        with self.transaction():
            self._lock_writers()
            if not self._bulk:
                pg_terms.remove_document(self._q, doc_id)
            self._q("DELETE FROM lorag_documents WHERE id = %s", (doc_id,))
            self._bump_revision()

    def replace_document(self, path: str, sha256: str, mtime: float, size: int, chunks: Sequence[NewChunk],
                         progress: ProgressFn | None = None, *, collection: str = DEFAULT_COLLECTION,
                         meta: dict[str, Any] | None = None, added_at: str | None = None) -> int:
        collection = validate_collection(collection)
        with self.transaction():
            self._lock_writers()
            old = self._q("SELECT id FROM lorag_documents WHERE path = %s", (path,)).fetchone()
            if old is not None and not self._bulk:
                pg_terms.remove_document(self._q, int(old[0]))
            self._q("DELETE FROM lorag_documents WHERE path = %s", (path,))
            doc_id = int(self._q(
                "INSERT INTO lorag_documents (path, path_key, sha256, mtime, size, n_chunks, added_at, collection, "
                "meta) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (path, path_key(path), sha256, mtime, size, len(chunks), added_at or now_iso(), collection,
                 json.dumps(meta or {}, ensure_ascii=False))).fetchone()[0])  # type: ignore[index]
            self._insert_chunks(doc_id, collection, chunks, progress)
            if not self._bulk:
                pg_terms.add_document(self._q, doc_id)
                pg_postings.add_document(self._q, doc_id)
            self._bump_revision()
        return doc_id

    def _insert_chunks(self, doc_id: int, collection: str, chunks: Sequence[NewChunk],
                       progress: ProgressFn | None) -> None:
        dims = {int(c.vector.size) for c in chunks if c.vector is not None and c.vector.size}
        if self._bulk:
            self._bulk_dims.update(dims)  # their HNSW indexes are built at the end of the load
        for dim in dims if not self._bulk else ():
            self._q(pg_sql.hnsw_index(dim))
        with self._db.cursor() as cur:
            for i in range(0, len(chunks), 500):
                with cur.copy(f"COPY lorag_chunks ({pg_copy.COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(pg_copy.encode(doc_id, collection, chunks[i : i + 500], i))
                if progress:
                    progress(min(i + 500, len(chunks)), len(chunks))

    def collections(self) -> list[CollectionInfo]:
        rows = self._q('SELECT collection, COUNT(*), COALESCE(SUM(n_chunks), 0) FROM lorag_documents '
                       'GROUP BY collection ORDER BY collection COLLATE "C"').fetchall()
        return [CollectionInfo(str(name), int(docs), int(n)) for name, docs, n in rows]

    # -- chunks ---------------------------------------------------------------------------------
    def get_chunks(self, chunk_ids: Sequence[int]) -> list[Chunk]:
        if not chunk_ids:
            return []
        rows = self._q('SELECT c.id, c.doc_id, d.path, c.page, c.start, c."end", c.text, c.page_label '
                       "FROM lorag_chunks c JOIN lorag_documents d ON d.id = c.doc_id WHERE c.id = ANY(%s)",
                       (list(chunk_ids),)).fetchall()
        by_id = {r[0]: Chunk(*r) for r in rows}
        return [by_id[i] for i in chunk_ids if i in by_id]

    def count_chunks(self, collection: str | None = None) -> int:
        if collection is None:
            return int(self._q("SELECT COUNT(*) FROM lorag_chunks").fetchone()[0])  # type: ignore[index]
        return int(self._q("SELECT COUNT(*) FROM lorag_chunks WHERE collection = %s",
                           (collection,)).fetchone()[0])  # type: ignore[index]

    def document_chunks(self, doc_id: int) -> list[NewChunk]:
        rows = self._q('SELECT page, start, "end", text, tokens, embedding, page_label FROM lorag_chunks '
                       "WHERE doc_id = %s ORDER BY ord", (doc_id,)).fetchall()
        return [NewChunk(text, page, start, end, tokens.split(TOKEN_SEP) if tokens else [],
                         _as_array(emb), label)
                for page, start, end, text, tokens, emb, label in rows]

    def chunk_ids(self, doc_id: int) -> list[int]:
        rows = self._q("SELECT id FROM lorag_chunks WHERE doc_id = %s ORDER BY ord", (doc_id,)).fetchall()
        return [int(r[0]) for r in rows]

    def iter_tokens(self) -> Iterator[tuple[int, list[str]]]:
        for chunk_id, tokens in self._q("SELECT id, tokens FROM lorag_chunks ORDER BY id").fetchall():
            yield int(chunk_id), tokens.split(TOKEN_SEP) if tokens else []

    # -- search ---------------------------------------------------------------------------------
    def term_stats(self, terms: Sequence[str]) -> tuple[int, float, dict[str, int]]:
        """(chunks, mean tokens per chunk, document frequency per term), read fresh in one round trip."""
        n_rows, n_tokens, dfs = pg_terms.read(self._q, [t for t in dict.fromkeys(terms) if pg_sql.usable(t)])
        self._last_stats = (n_rows, n_tokens / n_rows if n_rows else 1.0, dfs)
        return self._last_stats

    def lexical_candidates(self, terms: Sequence[str], n: int, collection: str | None = None) -> list[int]:
        terms = [t for t in terms if pg_sql.usable(t)]
        if not terms:
            return []
        # The statistics lexical_search read a moment ago (they only steer which candidates are proposed).
        n_rows, avgdl, dfs = self._last_stats
        if any(t not in dfs for t in terms):
            n_rows, avgdl, dfs = self.term_stats(terms)
        weights = {t: pg_sql.idf(n_rows, dfs.get(t, 0)) for t in terms}
        return pg_postings.rank(self._q, weights, n, avgdl, collection)

    def chunk_tokens(self, chunk_ids: Sequence[int]) -> dict[int, list[str]]:
        rows = self._q("SELECT id, tokens FROM lorag_chunks WHERE id = ANY(%s)", (list(chunk_ids),)).fetchall()
        return {int(cid): tokens.split(TOKEN_SEP) if tokens else [] for cid, tokens in rows}

    def term_counts(self, chunk_ids: Sequence[int], terms: Sequence[str]) -> dict[int, tuple[int, dict[str, int]]]:
        # Counted in the joined token strings: splitting 200 chunks into lists cost more than reading them.
        rows = self._q("SELECT id, tokens FROM lorag_chunks WHERE id = ANY(%s)", (list(chunk_ids),)).fetchall()
        return count_terms(rows, terms)

    def dense_search(self, vector: np.ndarray, k: int, collection: str | None = None) -> Ranking:
        return pg_dense.search(self, vector, k, collection)

    def collection_share(self, collection: str) -> float:
        """The fraction of all chunks that are in ``collection``, at the current revision (cached)."""
        key = (self.url, self.revision(), collection)
        share = _share_cache.get(key)
        if share is None:
            part, total = self._q("SELECT COALESCE(SUM(n_chunks) FILTER (WHERE collection = %s), 0), "
                                  "COALESCE(SUM(n_chunks), 0) FROM lorag_documents", (collection,)).fetchone()
            share = float(part) / float(total) if total else 0.0
            if len(_share_cache) > 256:
                _share_cache.clear()
            _share_cache[key] = share
        return share

    # -- plumbing -------------------------------------------------------------------------------
    def _q(self, sql: str, args: Sequence[Any] | None = None, *, binary: bool = False) -> Any:
        import psycopg

        try:
            return self._db.execute(sql, args, binary=binary)  # type: ignore[arg-type]
        except psycopg.errors.DiskFull as exc:
            raise StoreError(f"the PostgreSQL server at {self.path} is out of disk space; nothing was changed.",
                             "Free space on the database server and try again.") from exc
        except psycopg.OperationalError as exc:
            raise pg_sql.connection_error(self.path, exc) from exc


def _as_array(value: Any) -> np.ndarray | None:
    """A stored vector as float32 (pgvector's adapter gives a Vector object or an array, by version)."""
    if value is None:
        return None
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)
