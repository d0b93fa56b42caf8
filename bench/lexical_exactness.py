"""How close the SQLite store's BM25 comes to exact BM25 over every chunk (bm25s, the in-memory reference).

    python bench/lexical_exactness.py [--chunks 100000] [--keep DIR] [--budgets 4000,8000,16000]

The store only scores candidates proposed by the rarer query terms (at most ``candidate_postings`` postings), so
at scale it can miss a chunk that exact BM25 ranks high. For each budget, over the Debian FAQ headings: how many
queries get the exact top 1 and top 10 (compared by score, since the corpus repeats chunks), the mean ratio of
the returned scores to the exact ones at each of the top 10 ranks, and the p50 CPU ms of lexical_search.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    from search_steps import store_config
    from store_scale import corpus

    from lorag.rag.evaluate import faq_pairs
    from lorag.rag.japanese import tokenize
    from lorag.rag.loaders import normalize_text
    from lorag.rag.retrieve import BM25Index
    from lorag.rag.store import open_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="the store folder of bench/search_steps.py --keep")
    parser.add_argument("--budgets", default="4000,8000,16000")
    args = parser.parse_args()
    _texts, tokens, _vectors = corpus(args.chunks)
    exact_index = BM25Index(list(range(1, len(tokens) + 1)), tokens)  # the store numbers chunks from 1, in order
    queries = [tokenize(normalize_text(p.heading), "sudachi") for p in faq_pairs()]
    exact = [exact_index.rank(q, 10) for q in queries]
    with tempfile.TemporaryDirectory(prefix="lorag-lex-") as tmp, \
            open_store(store_config(args.keep or Path(tmp), args.chunks)) as store:
        print(f"{args.chunks:,} chunks, {len(queries)} queries (Debian FAQ headings)")
        print("| postings budget | exact top 1 | exact top 10 | score ratio @10 | CPU p50 ms |\n|---|---|---|---|---|")
        for budget in (int(b) for b in args.budgets.split(",")):
            store.candidate_postings = budget
            got, cpu = [], []
            for q in queries:
                t0 = time.thread_time()
                got.append(store.lexical_search(q, 10))
                cpu.append((time.thread_time() - t0) * 1000)
            top1 = sum(bool(e) and bool(g) and abs(e[0][1] - g[0][1]) < 1e-4 for e, g in zip(exact, got, strict=True))
            top10 = sum([round(s, 4) for _, s in e] == [round(s, 4) for _, s in g]
                        for e, g in zip(exact, got, strict=True))
            ratio = np.mean([np.mean([min(1.0, (g[i][1] if i < len(g) else 0.0) / e[i][1]) for i in range(len(e))])
                             for e, g in zip(exact, got, strict=True) if e])
            print(f"| {budget:,} | {top1} | {top10} | {ratio:.4f} | {statistics.median(cpu):.2f} |")


if __name__ == "__main__":
    main()
