"""The PostgreSQL store's lexical postings: each term's chunks with their counts and lengths, read in bulk.

Proposing BM25 candidates through the GIN index costs a visit to each matching chunk's wide row (text, tokens,
tsvector and vector) and two ``ts_rank`` calls per row: about 40 ms for 4,000 postings and 300 ms for a term in
34,000 chunks at 1M chunks. So the store keeps, per term and document, one row whose ``data`` holds every
posting as 14 bytes (chunk id int8, term frequency int2, chunk length int4, big-endian), written in the
writer's transaction with the chunks and deleted with the document (ON DELETE CASCADE). A search reads the
rare terms' rows in one query in binary and ranks them in numpy with the same BM25 (FTS5's constants, length
included) the ranking query computed in SQL, so the candidates are the same; the term frequency is the
tsvector's (positions, at most ``pg_sql.MAX_TF``).

Usage::

    add_document(store._q, doc_id)                      # after the chunks of doc_id are in
    ranked = rank(store._q, {"休暇": 7.1}, 200, avgdl=42.8)  # chunk ids, best first
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lorag.rag.store.pg_sql import K1, B
from lorag.rag.store.pg_terms import Query

BATCH_CHUNKS = 20_000  # chunks whose postings one statement of a rebuild writes
POSTING = np.dtype([("id", ">i8"), ("tf", ">i2"), ("len", ">i4")])  # 14 bytes, no padding
SCHEMA = """
CREATE TABLE IF NOT EXISTS lorag_postings (
    term TEXT NOT NULL, doc_id BIGINT NOT NULL REFERENCES lorag_documents (id) ON DELETE CASCADE,
    collection TEXT NOT NULL, data BYTEA NOT NULL);
ALTER TABLE lorag_postings ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX IF NOT EXISTS lorag_postings_term ON lorag_postings (term);
CREATE INDEX IF NOT EXISTS lorag_postings_doc ON lorag_postings (doc_id)
"""
# STORAGE EXTERNAL: ids and counts barely compress, and pglz would cost every read a decompression.
_ROWS = ("SELECT lexeme, c.doc_id, c.collection, string_agg(int8send(c.id) || "
         "int2send(array_length(positions, 1)::int2) || int4send(c.n_tokens), ''::bytea ORDER BY c.id) "
         "FROM lorag_chunks c, unnest(c.tsv) {where} GROUP BY lexeme, c.doc_id, c.collection")
_INSERT = "INSERT INTO lorag_postings (term, doc_id, collection, data) "


def add_document(q: Query, doc_id: int) -> None:
    """Write the postings of ``doc_id``'s chunks (just inserted)."""
    q(_INSERT + _ROWS.format(where="WHERE c.doc_id = %s"), (doc_id,))


def rebuild(q: Query) -> None:
    """Write every chunk's postings anew (after a bulk load, or for a store that predates them).

    Documents go in batches of about ``BATCH_CHUNKS`` chunks: one statement over the whole store sorted all its
    postings at once (spilling to disk) and took twice as long at 1M chunks.
    """
    q("TRUNCATE lorag_postings")
    for batch in _batches(q("SELECT id, n_chunks FROM lorag_documents ORDER BY id").fetchall()):
        q(_INSERT + _ROWS.format(where="WHERE c.doc_id = ANY(%s)"), (batch,))
    q("ANALYZE lorag_postings")


def _batches(docs: Sequence[tuple[int, int]]) -> list[list[int]]:
    batches: list[list[int]] = [[]]
    size = 0
    for doc_id, n_chunks in docs:
        if batches[-1] and size + int(n_chunks) > BATCH_CHUNKS:
            batches.append([])
            size = 0
        batches[-1].append(int(doc_id))
        size += int(n_chunks)
    return [b for b in batches if b]


def read(q: Query, terms: Sequence[str], collection: str | None = None) -> dict[str, np.ndarray]:
    """Each term's postings (an array of ``POSTING``; absent for a term no chunk holds), in one query."""
    sql = "SELECT term, data FROM lorag_postings WHERE term = ANY(%s)"
    args: list[Any] = [list(terms)]
    if collection is not None:
        sql += " AND collection = %s"
        args.append(collection)
    parts: dict[str, list[bytes]] = {}
    for term, data in q(sql, args, binary=True).fetchall():
        parts.setdefault(term, []).append(bytes(data))
    return {term: read_bytes(b"".join(chunks)) for term, chunks in parts.items()}


def read_bytes(data: bytes) -> np.ndarray:
    """The postings packed in one ``data`` value (or several joined)."""
    return np.frombuffer(data, dtype=POSTING)


def rank(q: Query, weights: dict[str, float], n: int, avgdl: float, collection: str | None = None) -> list[int]:
    """The ``n`` chunks with the best BM25 over the weighted terms (ties by id), FTS5's k1 and b."""
    found = read(q, list(weights), collection)
    if not found:
        return []
    ids: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for term in (t for t in weights if t in found):  # summed in the ranking query's order
        postings = found[term]
        tf = postings["tf"].astype(np.float64)
        norm = K1 * ((1 - B) + (B / float(avgdl or 1.0)) * postings["len"].astype(np.float64))
        ids.append(postings["id"].astype(np.int64))
        scores.append(weights[term] * (K1 + 1) * tf / (tf + norm))
    if len(ids) == 1:
        every, total = ids[0], scores[0]  # one term: its chunks are distinct already
    else:
        merged = np.unique(np.concatenate(ids), return_inverse=True)
        every, total = merged[0], np.bincount(merged[1], weights=np.concatenate(scores))
    return [int(i) for i in _top(every, total, n)]


def _top(ids: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` ids of the highest scores, ties by id: only those at or above the n-th score are sorted."""
    if len(ids) > n:
        kth = np.partition(scores, len(scores) - n)[len(scores) - n]
        keep = scores >= kth
        ids, scores = ids[keep], scores[keep]
    return ids[np.lexsort((ids, -scores))[:n]]
