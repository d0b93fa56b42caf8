"""Hybrid retrieval: BM25 over Japanese morphemes plus dense cosine similarity, fused by reciprocal rank.

Usage::

    for hit in search(load_config(), "パッケージを削除するには？", top_k=3):
        print(hit.rank, hit.source, hit.page, hit.text[:40])

The indexes are built lazily from the store and cached per process, keyed by the store's revision.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lorag.config import Config
from lorag.rag.embedders import Embedder, get_embedder
from lorag.rag.japanese import tokenize, whitespace_tokens
from lorag.rag.loaders import normalize_text
from lorag.rag.store import Store

Ranking = list[tuple[int, float]]  # (chunk id, score), best first
MODES = ("hybrid", "bm25", "dense", "whitespace")


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk; ``start``/``end`` are character offsets into its page (or document) text."""

    rank: int
    score: float
    source: str
    page: int | None
    start: int
    end: int
    text: str
    chunk_id: int
    doc_id: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BM25Index:
    """bm25s over pre-tokenised chunks; ``ids[i]`` is the chunk id of row i."""

    def __init__(self, ids: Sequence[int], token_lists: Sequence[list[str]]) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG
        self.ids = np.asarray(ids, dtype=np.int64)
        self._bm25 = bm25s.BM25()
        self._vocab: set[str] = set()
        if len(self.ids):
            self._bm25.index([list(t) for t in token_lists], show_progress=False)
            self._vocab = set(self._bm25.vocab_dict)

    def rank(self, query_tokens: list[str], k: int) -> Ranking:
        known = [t for t in query_tokens if t in self._vocab]
        if not known or not len(self.ids):
            return []
        scores = np.asarray(self._bm25.get_scores(known), dtype=np.float32)
        return _top(self.ids, scores, k, positive_only=True)


class DenseIndex:
    """Cosine similarity over an L2-normalised float32 matrix; ``ids[i]`` is the chunk id of row i."""

    def __init__(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)

    def rank(self, query_vector: np.ndarray, k: int) -> Ranking:
        if not len(self.ids) or query_vector.size != self.matrix.shape[1]:
            return []
        return _top(self.ids, self.matrix @ query_vector.astype(np.float32).ravel(), k)


def _top(ids: np.ndarray, scores: np.ndarray, k: int, positive_only: bool = False) -> Ranking:
    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(int(ids[i]), float(scores[i])) for i in best if not positive_only or scores[i] > 0]


def rrf(rankings: Sequence[Ranking], rrf_k: int = 60) -> Ranking:
    """Reciprocal-rank fusion: score = sum over rankings of 1 / (rrf_k + rank)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (chunk_id, _score) in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


class Retriever:
    """The rankers over one set of chunks: bm25, whitespace-bm25, dense, and their hybrid."""

    def __init__(self, bm25: BM25Index, dense: DenseIndex, tokenizer: str, embedder: Embedder,
                 whitespace: Callable[[], BM25Index] | None = None, rrf_k: int = 60, candidates: int = 50) -> None:
        self.bm25, self.dense, self.tokenizer, self.embedder = bm25, dense, tokenizer, embedder
        self._whitespace_factory = whitespace
        self._whitespace: BM25Index | None = None
        self.rrf_k, self.candidates = rrf_k, candidates
        self._query_vectors: dict[str, np.ndarray] = {}

    @classmethod
    def from_passages(cls, ids: Sequence[int], texts: Sequence[str], token_lists: Sequence[list[str]],
                      vectors: np.ndarray, tokenizer: str, embedder: Embedder, **kw: Any) -> Retriever:
        """A retriever over passages held in memory (benchmarks, evaluation)."""
        return cls(BM25Index(ids, token_lists), DenseIndex(np.asarray(ids), vectors), tokenizer, embedder,
                   whitespace=lambda: BM25Index(ids, [whitespace_tokens(t) for t in texts]), **kw)

    def rank(self, query: str, k: int, mode: str = "hybrid") -> Ranking:
        """The best ``k`` chunk ids for ``query`` with one ranker (see MODES)."""
        depth = max(k, self.candidates)
        if mode == "bm25":
            return self.bm25.rank(tokenize(query, self.tokenizer), k)
        if mode == "whitespace":
            return self.whitespace_index().rank(whitespace_tokens(query), k)
        if mode == "dense":
            return self._dense(query, k)
        if mode != "hybrid":
            raise ValueError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}")
        rankings = [self.bm25.rank(tokenize(query, self.tokenizer), depth), self._dense(query, depth)]
        return rrf([r for r in rankings if r], self.rrf_k)[:k]

    def prime_queries(self, queries: Sequence[str]) -> None:
        """Embed many queries in batches up front (several times faster than one by one), for evaluation."""
        if self.embedder.dim:
            unique = [q for q in dict.fromkeys(queries) if q not in self._query_vectors]
            self._query_vectors.update(zip(unique, self.embedder.embed_queries(unique), strict=True))

    def _dense(self, query: str, k: int) -> Ranking:
        if self.embedder.dim == 0 or not len(self.dense.ids):
            return []
        vector = self._query_vectors.get(query)
        if vector is None:
            vector = self.embedder.embed_queries([query])[0]
        return self.dense.rank(vector, k)

    def whitespace_index(self) -> BM25Index:
        if self._whitespace is None:
            if self._whitespace_factory is None:
                raise ValueError("this retriever has no whitespace baseline")
            self._whitespace = self._whitespace_factory()
        return self._whitespace


_cache: dict[tuple[str, int], Retriever] = {}
_cache_lock = threading.Lock()


def retriever_for(config: Config, store: Store) -> Retriever:
    """The cached retriever for ``store``, rebuilt when the store's revision has changed."""
    key = (str(store.path.resolve()), store.revision())
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            for old in [k for k in _cache if k[0] == key[0]]:
                del _cache[old]
            cached = _cache[key] = _build_retriever(config, store)
        return cached


def _build_retriever(config: Config, store: Store) -> Retriever:
    r = config.settings.retrieval
    # Queries must be tokenised and embedded the way the stored chunks were.
    tokenizer = store.get_meta("tokenizer") or r.tokenizer
    embedder = get_embedder(store.get_meta("embedder") or r.embedder)
    pairs = list(store.iter_tokens())
    ids = [p[0] for p in pairs]
    vec_ids, matrix = store.load_vectors()

    def whitespace() -> BM25Index:
        with Store(store.path) as fresh:  # the caller's store may be closed by the time this runs
            return BM25Index(ids, [whitespace_tokens(c.text) for c in fresh.get_chunks(ids)])

    return Retriever(BM25Index(ids, [p[1] for p in pairs]), DenseIndex(vec_ids, matrix), tokenizer, embedder,
                     whitespace=whitespace, rrf_k=r.rrf_k, candidates=r.candidates)


def search(config: Config, query: str, top_k: int | None = None, mode: str = "hybrid") -> list[Hit]:
    """The ``top_k`` chunks of the configured store that best answer ``query``."""
    k = top_k or config.settings.retrieval.top_k
    query = normalize_text(query)
    if not query.strip():
        return []
    store = Store(config.store_path)
    try:
        ranking = retriever_for(config, store).rank(query, k, mode)
        chunks = {c.id: c for c in store.get_chunks([cid for cid, _ in ranking])}
    finally:
        store.close()
    hits: list[Hit] = []
    for chunk_id, score in ranking:
        c = chunks.get(chunk_id)
        if c is not None:
            hits.append(Hit(len(hits) + 1, score, c.source, c.page, c.start, c.end, c.text, c.id, c.doc_id))
    return hits
