"""The PostgreSQL store's search indexes (GIN over the tsvectors, HNSW per vector size) built in one go.

A bulk load drops them and calls ``build`` at its end: building is many times faster than upkeep per row,
provided the HNSW graph fits in maintenance_work_mem (see ``pg_sql.build_settings``).

Usage::

    names = search_index_names(store._q)      # dropped before the load
    seconds = build(store, [384])             # {"gin": …, "hnsw_384": …, "statistics": …, "postings": …}
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from lorag.rag.store import pg_postings, pg_sql, pg_terms
from lorag.rag.store.pg_terms import Query


def search_index_names(q: Query) -> list[str]:
    """The GIN and HNSW indexes that exist now."""
    rows = q("SELECT indexname FROM pg_indexes WHERE tablename = 'lorag_chunks' AND "
             "(indexname LIKE 'lorag_chunks_hnsw_%%' OR indexname = 'lorag_chunks_tsv')").fetchall()
    return [str(r[0]) for r in rows]


def build(store: Any, dims: Sequence[int]) -> dict[str, float]:
    """Build the GIN index and an HNSW index per vector size in ``dims`` (those dropped or loaded: finding them
    in the table would read every vector), recount BM25's statistics and write the lexical postings; seconds
    spent on each."""
    q: Query = store._q
    rows = store.count_chunks()
    seconds: dict[str, float] = {}
    for name, sql in [("gin", pg_sql.GIN_INDEX), *((f"hnsw_{d}", pg_sql.hnsw_index(d)) for d in dims)]:
        t0 = time.perf_counter()
        with store.transaction():
            for setting in pg_sql.build_settings(rows, max(dims, default=0), local_cores(store._db)):
                q(setting)
            q(sql)
        seconds[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with store.transaction():
        store._lock_writers()
        pg_terms.rebuild(q)
        store.set_meta("term_stats", "exact")
        seconds["statistics"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        pg_postings.rebuild(q)  # in the same transaction: readers see the new statistics and postings together
        store.set_meta("postings", "exact")
        store._bump_revision()  # readers drop statistics they cached during the load
    seconds["postings"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    q("ANALYZE lorag_chunks")  # the planner's row estimates for the freshly loaded table
    seconds["statistics"] += time.perf_counter() - t0
    return seconds


def local_cores(db: Any) -> int | None:
    """This machine's cores when the server runs on it (a unix socket or loopback), else None."""
    host = db.info.host or ""
    if host.startswith("/") or host in ("localhost", "127.0.0.1", "::1"):
        return os.cpu_count()
    return None
