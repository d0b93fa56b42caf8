"""BM25's collection statistics in the PostgreSQL store, kept exact by every write.

Counting a term's chunks through the GIN index costs one heap visit per matching chunk: about a second for a
common term at 1M chunks, and the mean chunk length needs a scan of the whole table. So the store keeps them:
``lorag_terms`` holds each lexeme's document frequency and ``lorag_meta`` the chunk and token totals, updated
in the writer's transaction (documents added and removed) or rebuilt in one pass after a bulk load. A search
reads them with two index lookups.

Usage::

    add_document(store._q, doc_id)          # after the chunks of doc_id are in
    n_chunks, n_tokens, dfs = read(store._q, ["休暇", "申請"])   # one round trip, always current
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Query = Callable[..., Any]  # PostgresStore._q: (sql, args) -> cursor

SCHEMA = "CREATE TABLE IF NOT EXISTS lorag_terms (term TEXT PRIMARY KEY, df BIGINT NOT NULL)"
_DOC_TERMS = "SELECT lexeme, COUNT(*) AS n FROM lorag_chunks, unnest(tsv) WHERE doc_id = %s GROUP BY lexeme"
_DOC_TOTALS = "SELECT COUNT(*), COALESCE(SUM(n_tokens), 0) FROM lorag_chunks WHERE doc_id = %s"
_BUMP = ("UPDATE lorag_meta SET value = (value::bigint + %s)::text WHERE key = %s")


def add_document(q: Query, doc_id: int) -> None:
    """Count the chunks of ``doc_id`` (just inserted) into the statistics."""
    q(f"INSERT INTO lorag_terms (term, df) {_DOC_TERMS} "
      "ON CONFLICT (term) DO UPDATE SET df = lorag_terms.df + excluded.df", (doc_id,))
    _bump_totals(q, doc_id, 1)


def remove_document(q: Query, doc_id: int) -> None:
    """Take the chunks of ``doc_id`` (about to be deleted) out of the statistics."""
    q(f"UPDATE lorag_terms t SET df = t.df - d.n FROM ({_DOC_TERMS}) d WHERE t.term = d.lexeme", (doc_id,))
    _bump_totals(q, doc_id, -1)


def _bump_totals(q: Query, doc_id: int, sign: int) -> None:
    chunks, tokens = q(_DOC_TOTALS, (doc_id,)).fetchone()
    q(_BUMP, (sign * int(chunks), "chunk_count"))
    q(_BUMP, (sign * int(tokens), "token_count"))


def rebuild(q: Query) -> None:
    """Recount everything in one pass over the chunks (after a bulk load, or for a store that predates this)."""
    q("TRUNCATE lorag_terms")
    q("INSERT INTO lorag_terms (term, df) SELECT lexeme, COUNT(*) FROM lorag_chunks, unnest(tsv) GROUP BY lexeme")
    chunks, tokens = q("SELECT COUNT(*), COALESCE(SUM(n_tokens), 0) FROM lorag_chunks").fetchone()
    for key, value in (("chunk_count", chunks), ("token_count", tokens)):
        q("INSERT INTO lorag_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          (key, str(int(value))))


def totals(q: Query) -> tuple[int, int]:
    """(chunks, tokens) in the whole store."""
    rows = dict(q("SELECT key, value FROM lorag_meta WHERE key IN ('chunk_count', 'token_count')").fetchall())
    return int(rows.get("chunk_count", 0)), int(rows.get("token_count", 0))


def read(q: Query, terms: Sequence[str]) -> tuple[int, int, dict[str, int]]:
    """(chunks, tokens, chunks holding each of ``terms``) in one round trip; 0 for a term no chunk has."""
    rows = q("SELECT key, value::bigint FROM lorag_meta WHERE key IN ('chunk_count', 'token_count') UNION ALL "
             "SELECT 'term:' || term, df FROM lorag_terms WHERE term = ANY(%s)", (list(terms),)).fetchall()
    found = {str(key): int(value) for key, value in rows}
    dfs = {t: found.get("term:" + t, 0) for t in terms}
    return found.get("chunk_count", 0), found.get("token_count", 0), dfs
