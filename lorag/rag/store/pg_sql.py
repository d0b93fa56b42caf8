"""The PostgreSQL store's schema, its BM25 in SQL, and one-line messages for connection failures.

The lexical side is a ``tsvector`` of the pre-tokenized Sudachi tokens (built directly, so the ``simple``
configuration never re-splits them) with a GIN index, and the same postings packed per term and document in
``lorag_postings`` (pg_postings), from which searches take their candidates. ``bm25_sql`` is the ranking those
candidates reproduce, kept as the reference the tests and bench/store_scale_pg.py compare against: ``ts_rank``
alone has no IDF, so the score is BM25 with the same constants as SQLite's FTS5 (k1 = 1.2, b = 0.75,
idf = ln((N - df + 0.5) / (df + 0.5)), at least 1e-6): each term's frequency is read back from ``ts_rank`` with
unit weights, which for one term is ``sum(1/i², i = 1..tf) / (π²/6)``, a strictly increasing function of tf that
``lorag_tf`` inverts."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from lorag.errors import StoreError

SCHEMA_VERSION = 3  # 2: BM25 statistics kept in lorag_terms and lorag_meta (pg_terms); 3: lorag_postings
BULK_LOCK = 7411991  # held (session advisory lock) while a bulk load runs
K1, B = 1.2, 0.75
MAX_TF = 64  # positions kept per lexeme; BM25 saturates long before
MAX_LEXEME_BYTES = 2000  # PostgreSQL refuses lexemes over 2047 bytes
GIN_INDEX = "CREATE INDEX IF NOT EXISTS lorag_chunks_tsv ON lorag_chunks USING gin (tsv)"


def _tf_thresholds() -> list[float]:
    ranks = [sum(1 / i**2 for i in range(1, tf + 1)) / (math.pi**2 / 6) for tf in range(1, MAX_TF + 1)]
    return [ranks[0] / 2] + [(a + b) / 2 for a, b in itertools.pairwise(ranks)]


SCHEMA = f"""
CREATE TABLE IF NOT EXISTS lorag_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lorag_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lorag_documents (
    id BIGSERIAL PRIMARY KEY, path TEXT NOT NULL UNIQUE, path_key TEXT NOT NULL, sha256 TEXT NOT NULL,
    mtime DOUBLE PRECISION NOT NULL, size BIGINT NOT NULL, n_chunks INTEGER NOT NULL, added_at TEXT NOT NULL,
    collection TEXT NOT NULL DEFAULT 'default', meta TEXT NOT NULL DEFAULT '{{}}');
CREATE INDEX IF NOT EXISTS lorag_documents_key ON lorag_documents (path_key);
CREATE INDEX IF NOT EXISTS lorag_documents_collection ON lorag_documents (collection);
CREATE TABLE IF NOT EXISTS lorag_chunks (
    id BIGSERIAL PRIMARY KEY, doc_id BIGINT NOT NULL REFERENCES lorag_documents (id) ON DELETE CASCADE,
    collection TEXT NOT NULL, ord INTEGER NOT NULL, page INTEGER, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    text TEXT NOT NULL, tokens TEXT NOT NULL, page_label TEXT, n_tokens INTEGER NOT NULL, tsv TSVECTOR NOT NULL,
    embedding VECTOR);
CREATE INDEX IF NOT EXISTS lorag_chunks_doc ON lorag_chunks (doc_id);
CREATE INDEX IF NOT EXISTS lorag_chunks_collection ON lorag_chunks (collection);
CREATE OR REPLACE FUNCTION lorag_tf(r REAL) RETURNS INTEGER IMMUTABLE PARALLEL SAFE LANGUAGE sql
    AS 'SELECT width_bucket(r::float8, ARRAY[{", ".join(f"{t!r}" for t in _tf_thresholds())}]::float8[])'
"""
BUILD_MEMORY_CAP_MB = 8192


def build_settings(rows: int, dim: int, cores: int | None) -> list[str]:
    """SET LOCAL statements for building the search indexes over ``rows`` chunks of ``dim``-dimension vectors.

    HNSW builds fast only while its graph fits in maintenance_work_mem (about the vectors plus 1 KB of
    neighbour lists per row); past that pgvector falls back to inserting on disk, many times slower. Parallel
    workers (pgvector >= 0.6) are used when the server runs on this machine and its cores are known.
    """
    need_mb = int(rows * (dim * 4 + 1024) * 1.25 / 2**20) + 64
    settings = [f"SET LOCAL maintenance_work_mem = '{min(max(need_mb, 256), BUILD_MEMORY_CAP_MB)}MB'"]
    if cores:
        settings.append(f"SET LOCAL max_parallel_maintenance_workers = {max(1, min(cores - 1, 7))}")
    return settings


def hnsw_index(dim: int) -> str:
    """The HNSW index over the vectors, for one dimension (the embedder's)."""
    return (f"CREATE INDEX IF NOT EXISTS lorag_chunks_hnsw_{dim} ON lorag_chunks USING hnsw "
            f"((embedding::vector({dim})) vector_cosine_ops) WHERE vector_dims(embedding) = {dim}")


def quote_lexeme(token: str) -> str:
    """``token`` as one quoted lexeme of tsvector/tsquery input."""
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def usable(token: str) -> bool:
    return bool(token.strip()) and "\x00" not in token and len(token.encode()) <= MAX_LEXEME_BYTES


def tsvector_text(tokens: Sequence[str]) -> str:
    """The tsvector of ``tokens`` with each lexeme's frequency kept as its number of positions."""
    counts: dict[str, int] = {}
    for t in tokens:
        if usable(t):
            counts[t] = counts.get(t, 0) + 1
    return " ".join(f"{quote_lexeme(t)}:{','.join(str(i) for i in range(1, min(n, MAX_TF) + 1))}"
                    for t, n in counts.items())


def idf(n_rows: int, df: int) -> float:
    """FTS5's idf: ln((N - df + 0.5) / (df + 0.5)), never below 1e-6."""
    value = math.log((n_rows - df + 0.5) / (df + 0.5)) if n_rows else 0.0
    return value if value > 0 else 1e-6


def bm25_sql(weights: Sequence[float], avgdl: float, by_collection: bool) -> str:
    """The ranking query (id, tokens, score) over the GIN index for terms with these weights (query count × idf);
    its parameters are each term's tsquery, the any-term tsquery, [the collection], and k. The reference for
    ``pg_postings.rank``, which proposes the same ids without visiting the rows."""
    tfs = ", ".join(f"lorag_tf(ts_rank('{{1,1,1,1}}', tsv, %s::tsquery))::float8 AS tf{i}"
                    for i in range(len(weights)))
    # Every constant is float8: numeric arithmetic, PostgreSQL's default for decimal literals, is several
    # times slower per row, and a common term's candidates are tens of thousands of rows at 1M chunks.
    norm = f"{_f(K1)} * ({_f(1 - B)} + {_f(B / float(avgdl or 1.0))} * n_tokens)"
    terms = " + ".join(f"{_f(w * (K1 + 1))} * tf{i} / (tf{i} + {norm})" for i, w in enumerate(weights))
    where = "tsv @@ %s::tsquery" + (" AND collection = %s" if by_collection else "")
    return (f"SELECT id, tokens, {terms} AS score FROM (SELECT id, n_tokens, tokens, {tfs} FROM lorag_chunks "
            f"WHERE {where}) m ORDER BY score DESC, id LIMIT %s")


def _f(value: float) -> str:
    return f"{float(value)!r}::float8"


def connection_error(where: str, exc: Exception) -> StoreError:
    """A one-line StoreError for a failed connection: unreachable, refused password, missing database."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "password authentication failed" in text or "no password supplied" in text:
        return StoreError(f"PostgreSQL at {where} refused the user name or password.",
                          "Fix the user and password in store.url (or set PGPASSWORD).")
    if "does not exist" in text and "database" in text:
        return StoreError(f"PostgreSQL at {where}: {text}.", "Create it (createdb NAME) or fix store.url.")
    if any(s in text for s in ("Connection refused", "could not connect", "No such file", "timeout expired",
                               "could not translate host name", "Name or service not known")):
        return StoreError(f"cannot reach PostgreSQL at {where} ({text}).",
                          "Start the server, or fix the host and port in store.url.")
    return StoreError(f"cannot connect to PostgreSQL at {where}: {text}.", "Check store.url in lorag.yaml.")


def pgvector_missing(where: str, exc: Exception) -> StoreError:
    """The message for a server without pgvector (or a user who may not enable it)."""
    text = str(exc).strip().splitlines()[0]
    if "permission denied" in text or "must be" in text:
        return StoreError(f"the pgvector extension is not enabled in the database at {where}, and this user may "
                          "not enable it.", "Ask an administrator to run `CREATE EXTENSION vector;` in that "
                          "database once.")
    return StoreError(f"the PostgreSQL server at {where} has no pgvector extension ({text}).",
                      "Install pgvector on the server (e.g. apt install postgresql-17-pgvector, or the "
                      "pgvector/pgvector Docker image), then run `CREATE EXTENSION vector;` in the database.")
