"""The SQLite store's lexical side: BM25 candidates read from FTS5's postings and ranked in numpy.

FTS5's own ``ORDER BY rank`` calls its ``bm25()`` once per matching row, which cost 6-8 ms of the 9-10 ms a
candidate query took at 100k chunks (bench/search_steps.py). Reading each rare term's postings with their
counts (the ``fts5vocab`` instance table, one row per occurrence) and ranking them in numpy by Lucene's BM25
without length normalisation costs 1-4 ms. The candidates are then scored exactly (all query terms, lengths
included) from the stored tokens, counted with ``str.count`` instead of splitting every chunk into a list.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np

from lorag.rag.store.base import LUCENE_K1, TOKEN_SEP

INSTANCES = "lorag_instances"  # a TEMP view of the index, per connection: the store's schema is unchanged
# One comma-separated string per term: a Python tuple per posting cost three times as much (bench/search_steps.py).
_BY_TERM = f"SELECT group_concat(doc) FROM temp.{INSTANCES} WHERE term = ?"
_BY_TERM_IN = (f"SELECT group_concat(v.doc) FROM temp.{INSTANCES} v JOIN chunks c ON c.id = v.doc "
               "JOIN documents d ON d.id = c.doc_id WHERE v.term = ? AND d.collection = ?")
_MATCHING = "SELECT group_concat(rowid) FROM chunk_fts WHERE chunk_fts MATCH ?"
_MATCHING_IN = ("SELECT group_concat(chunk_fts.rowid) FROM chunk_fts JOIN chunks c ON c.id = chunk_fts.rowid "
                "JOIN documents d ON d.id = c.doc_id WHERE chunk_fts MATCH ? AND d.collection = ?")


def open_instances(db: sqlite3.Connection) -> None:
    """Make the per-occurrence view of the FTS5 index on this connection (read-only connections too)."""
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{INSTANCES} USING fts5vocab(main, chunk_fts, instance)")


def rank_candidates(db: sqlite3.Connection, weights: dict[str, float], n: int,
                    collection: str | None = None) -> list[int]:
    """The ``n`` chunks with the best BM25 (no length normalisation) over the weighted terms; ties by id."""
    ids: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for term, weight in weights.items():
        chunks, tf = postings(db, term, collection)
        ids.append(chunks)
        scores.append(weight * tf * (LUCENE_K1 + 1) / (tf + LUCENE_K1))
    if not ids or not sum(len(a) for a in ids):
        return []
    every, where = np.unique(np.concatenate(ids), return_inverse=True)
    total = np.bincount(where, weights=np.concatenate(scores))
    best = np.lexsort((every, -total))[:n]
    return [int(i) for i in every[best]]


def postings(db: sqlite3.Connection, term: str, collection: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(chunk ids, occurrences in each) of ``term``.

    The index folds case and may split a token FTS5 sees as two (a space inside): when the folded term finds
    nothing, its chunks come from a phrase MATCH instead, counted once each.
    """
    args: tuple[str, ...] = (term.lower(),) if collection is None else (term.lower(), collection)
    docs = _column(db.execute(_BY_TERM if collection is None else _BY_TERM_IN, args))
    if docs.size:
        return np.unique(docs, return_counts=True)
    phrase = '"' + term.replace('"', '""') + '"'
    found = _column(db.execute(_MATCHING if collection is None else _MATCHING_IN,
                               (phrase,) if collection is None else (phrase, collection)))
    return found, np.ones(len(found), dtype=np.int64)


def _column(cursor: sqlite3.Cursor) -> np.ndarray:
    joined = cursor.fetchone()[0]
    return np.fromstring(joined, dtype=np.int64, sep=",") if joined else np.zeros(0, dtype=np.int64)


def count_terms(rows: Sequence[tuple[int, str]], terms: Sequence[str]) -> dict[int, tuple[int, dict[str, int]]]:
    """For each (chunk id, joined tokens) row: its token count and the occurrences of each of ``terms``.

    Doubling the separator gives every token its own pair of separators, so ``str.count`` of
    ``SEP + term + SEP`` counts adjacent repeats too and never matches inside a longer token.
    """
    out: dict[int, tuple[int, dict[str, int]]] = {}
    wrapped_terms = [(t, TOKEN_SEP + t + TOKEN_SEP) for t in terms]
    for cid, joined in rows:
        if not joined:
            out[int(cid)] = (0, {})
            continue
        wrapped = TOKEN_SEP + joined.replace(TOKEN_SEP, TOKEN_SEP + TOKEN_SEP) + TOKEN_SEP
        counts = {t: n for t, w in wrapped_terms if (n := wrapped.count(w))}
        out[int(cid)] = (joined.count(TOKEN_SEP) + 1, counts)
    return out
