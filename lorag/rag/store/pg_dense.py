"""Dense search in the PostgreSQL store: pgvector's HNSW, with collection filters that keep their answers.

An HNSW scan yields at most ``hnsw.ef_search`` candidates and, before pgvector 0.8, filters them afterwards: a
collection holding a tenth of the chunks would get about a tenth of ef_search answers. So a filtered search
widens ef_search to expect twice ``k`` hits of its collection (up to pgvector's ceiling of 1000); a collection
too small for that is scanned exactly, which for a small collection is cheap. pgvector >= 0.8 instead keeps
scanning (``hnsw.iterative_scan``). The query vector travels in binary (1.5 KB, not 4 KB of decimals).

Usage::

    ranking = search(store, query_vector, 50, collection="人事")
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lorag.rag.store.base import Ranking

EF_SEARCH = 100  # the session's default: candidates per unfiltered search (the fusion takes 50)
MAX_EF = 1000  # pgvector's ceiling for hnsw.ef_search


def search(store: Any, vector: np.ndarray, k: int, collection: str | None = None) -> Ranking:
    """The best ``k`` chunks (of ``collection``, or of all) by cosine similarity to ``vector``."""
    query = np.asarray(vector, dtype=np.float32).ravel()
    if not query.size or k <= 0:
        return []
    args = {"q": query, "k": k, "c": collection}
    sql = _sql(int(query.size), collection is not None)
    if collection is None:
        rows = _hnsw(store, sql, args, max(EF_SEARCH, k))
    elif store.iterative_scan:
        rows = store._q(sql, args).fetchall()
    else:
        share = store.collection_share(collection)
        ef = math.ceil(2 * k / share) if share else MAX_EF + 1
        rows = _hnsw(store, sql, args, max(ef, EF_SEARCH)) if ef <= MAX_EF else []
        if len(rows) < k:
            rows = _exact(store, True, args)  # too few came through the filter, or the collection is tiny
    ranking = [(int(cid), float(score)) for cid, score in rows]
    return sorted(ranking, key=lambda r: -r[1])  # a filtered HNSW scan may return them slightly out of order


def exact(store: Any, vector: np.ndarray, k: int, collection: str | None = None) -> Ranking:
    """The true best ``k`` by a full scan (the reference HNSW's recall is measured against)."""
    query = np.asarray(vector, dtype=np.float32).ravel()
    rows = _exact(store, collection is not None, {"q": query, "k": k, "c": collection})
    return [(int(cid), float(score)) for cid, score in rows]


def _sql(dim: int, by_collection: bool, exact: bool = False) -> str:
    where = f"vector_dims(embedding) = {dim}" + (" AND collection = %(c)s" if by_collection else "")
    # The exact scan orders by an expression no index serves. A planner setting would not do: psycopg prepares
    # a statement run 5 times, and its cached plan ignores settings changed later.
    order = f"(embedding::vector({dim}) <=> %(q)b)" + (" + 0" if exact else "")
    return (f"SELECT id, 1 - (embedding::vector({dim}) <=> %(q)b) FROM lorag_chunks WHERE {where} "
            f"ORDER BY {order} LIMIT %(k)s")


def _hnsw(store: Any, sql: str, args: dict[str, Any], ef: int) -> list[tuple[Any, ...]]:
    if ef == EF_SEARCH:
        return list(store._q(sql, args).fetchall())
    with store.transaction():
        store._q(f"SET LOCAL hnsw.ef_search = {int(ef)}")
        return list(store._q(sql, args).fetchall())


def _exact(store: Any, by_collection: bool, args: dict[str, Any]) -> list[tuple[Any, ...]]:
    return list(store._q(_sql(int(args["q"].size), by_collection, exact=True), args).fetchall())
