"""Hybrid retrieval: BM25 over Japanese morphemes plus dense cosine similarity, fused by reciprocal rank.

Usage::

    for hit in search(load_config(), "パッケージを削除するには？", top_k=3):
        print(hit.rank, hit.source, hit.page, hit.text[:40])

``search`` ranks inside the store (FTS5 BM25 or a Postgres tsvector, and the store's vectors): nothing is rebuilt
per process. ``Retriever.from_passages`` keeps the in-memory rankers (bm25s and a numpy matrix) for evaluation
and as the reference the store is measured against.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from lorag.config import Config
from lorag.rag.embedders import Embedder, get_embedder
from lorag.rag.japanese import tokenize, whitespace_tokens
from lorag.rag.loaders import normalize_text
from lorag.rag.open_stores import forget_reader, reader
from lorag.rag.store import Store, validate_collection
from lorag.rag.store.vectors import top_k as _top

Ranking = list[tuple[int, float]]  # (chunk id, score), best first
DenseSearch = Callable[[np.ndarray, int], Ranking]
MODES = ("hybrid", "bm25", "dense", "whitespace")
OVERLAP = True


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """The thread that embeds a hybrid search's query while the caller ranks its lexical side."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="lorag-embed")


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
    page_label: str | None = None  # the printed page label, when it differs from the PDF page index

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LexicalRanker(Protocol):
    """Ranks chunks for a list of query tokens."""

    def rank(self, query_tokens: list[str], k: int) -> Ranking: ...


class DenseRanker(Protocol):
    """Ranks chunks by similarity to a query vector."""

    def rank(self, query_vector: np.ndarray, k: int) -> Ranking: ...


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

    def searcher(self) -> DenseSearch:
        return self.rank


def rrf(rankings: Sequence[Ranking], rrf_k: int = 60) -> Ranking:
    """Reciprocal-rank fusion: score = sum over rankings of 1 / (rrf_k + rank)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (chunk_id, _score) in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


class StoreLexical:
    """The store's own BM25 (FTS5 or tsvector), optionally within one collection."""

    def __init__(self, store: Store, collection: str | None = None) -> None:
        self.store, self.collection = store, collection

    def rank(self, query_tokens: list[str], k: int) -> Ranking:
        return self.store.lexical_search(query_tokens, k, self.collection)


class StoreDense:
    """The store's vectors, optionally within one collection."""

    def __init__(self, store: Store, collection: str | None = None) -> None:
        self.store, self.collection = store, collection

    def rank(self, query_vector: np.ndarray, k: int) -> Ranking:
        return self.store.dense_search(query_vector, k, self.collection)

    def searcher(self) -> DenseSearch | None:
        """The store's search over its vectors as they are now, safe off this thread (SQLite); None when the
        store searches through its connection (Postgres)."""
        prepare = getattr(self.store, "dense_searcher", None)
        return prepare(self.collection) if prepare is not None else None


class Retriever:
    """The rankers over one set of chunks: bm25, whitespace-bm25, dense, and their hybrid."""

    def __init__(self, bm25: LexicalRanker, dense: DenseRanker, tokenizer: str, embedder: Embedder,
                 whitespace: Callable[[], BM25Index] | None = None, rrf_k: int = 60, candidates: int = 50) -> None:
        self.bm25, self.dense, self.tokenizer, self.embedder = bm25, dense, tokenizer, embedder
        self._whitespace_factory = whitespace
        self._whitespace: BM25Index | None = None
        self.rrf_k, self.candidates = rrf_k, candidates
        self.overlap = OVERLAP
        self._query_vectors: dict[str, np.ndarray] = {}
        self._dense_rankings: dict[str, Ranking] = {}

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
        if not self.overlap or not self.embedder.dim or query in self._dense_rankings:
            lexical = self.bm25.rank(tokenize(query, self.tokenizer), depth)
            return rrf([r for r in (lexical, self._dense(query, depth)) if r], self.rrf_k)[:k]
        # The query's embedding and dense ranking (C and numpy, no GIL) run on the other core while this thread ranks
        # the lexical side. The store's connection stays with this thread: the worker gets the vectors as they are.
        searcher = getattr(self.dense, "searcher", lambda: None)()
        job = _pool().submit(self._embed_and_rank, query, depth, searcher)
        lexical = self.bm25.rank(tokenize(query, self.tokenizer), depth)
        vector, dense = job.result()
        self._query_vectors[query] = vector
        if dense is None:
            dense = self.dense.rank(vector, depth)
        return rrf([r for r in (lexical, dense) if r], self.rrf_k)[:k]

    def _embed_and_rank(self, query: str, depth: int,
                        searcher: DenseSearch | None) -> tuple[np.ndarray, Ranking | None]:
        vector = self._query_vectors.get(query)
        if vector is None:
            vector = self.embedder.embed_queries([query])[0]
        return vector, searcher(vector, depth) if searcher is not None else None

    def prime_queries(self, queries: Sequence[str]) -> None:
        """Embed many queries in batches up front (several times faster than one by one), for evaluation."""
        if self.embedder.dim:
            unique = [q for q in dict.fromkeys(queries) if q not in self._query_vectors]
            self._query_vectors.update(zip(unique, self.embedder.embed_queries(unique), strict=True))

    def prime_dense(self, rankings: dict[str, Ranking]) -> None:
        """Dense rankings computed beforehand (a batch), used for those queries when ``k`` is not larger."""
        self._dense_rankings.update(rankings)

    def _dense(self, query: str, k: int) -> Ranking:
        if self.embedder.dim == 0:
            return []
        primed = self._dense_rankings.get(query)
        if primed is not None and len(primed) >= k:
            return primed[:k]
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


def store_retriever(config: Config, store: Store, collection: str | None = None) -> Retriever:
    """A retriever that ranks inside ``store`` (one collection, or all documents)."""
    r = config.settings.retrieval
    # Queries must be tokenised and embedded the way the stored chunks were.
    tokenizer = store.get_meta("tokenizer") or r.tokenizer
    embedder = get_embedder(store.get_meta("embedder") or r.embedder)
    return Retriever(StoreLexical(store, collection), StoreDense(store, collection), tokenizer, embedder,
                     rrf_k=r.rrf_k, candidates=r.candidates)


def search(config: Config, query: str, top_k: int | None = None, mode: str = "hybrid",
           collection: str | None = None) -> list[Hit]:
    """The ``top_k`` chunks of the configured store that best answer ``query`` (in ``collection``, or in all)."""
    if mode == "whitespace":
        raise ValueError("the whitespace baseline exists for in-memory evaluation only (Retriever.from_passages)")
    if collection is not None:
        collection = validate_collection(collection)
    query = normalize_text(query)
    if not query.strip():
        return []
    store = reader(config)
    try:
        ranking = store_retriever(config, store, collection).rank(query, top_k or config.settings.retrieval.top_k,
                                                                  mode)
        return _hits(store, ranking)
    except Exception:
        forget_reader(config)  # a broken connection (a restarted server) is not kept for the next query
        raise


def search_batch(config: Config, requests: Sequence[tuple[str, int | None, str | None]]) -> Iterator[list[Hit]]:
    """Hybrid ``search`` for many ``(query, top_k, collection)`` at once, the hits of each as soon as they are
    ready: the queries are embedded in one batch and scored against the vectors in one pass per collection."""
    queries = [normalize_text(q) for q, _, _ in requests]
    scopes = [None if c is None else validate_collection(c) for _, _, c in requests]
    ks = [top_k or config.settings.retrieval.top_k for _, top_k, _ in requests]
    store = reader(config)
    try:
        retrievers = {scope: store_retriever(config, store, scope) for scope in dict.fromkeys(scopes)}
        _prime(store, retrievers, queries, scopes, max(ks, default=0))
        for query, k, scope in zip(queries, ks, scopes, strict=True):
            yield _hits(store, retrievers[scope].rank(query, k)) if query.strip() else []
    except Exception:
        forget_reader(config)
        raise


def _prime(store: Store, retrievers: dict[str | None, Retriever], queries: list[str], scopes: list[str | None],
           k: int) -> None:
    """Embed every query once and rank each collection's queries against its vectors in one pass."""
    embedder = next(iter(retrievers.values())).embedder
    unique = list(dict.fromkeys(q for q in queries if q.strip()))
    if not embedder.dim or not unique:
        return
    vectors = dict(zip(unique, embedder.embed_queries(unique), strict=True))
    for scope, retriever in retrievers.items():
        mine = list(dict.fromkeys(q for q, s in zip(queries, scopes, strict=True) if s == scope and q.strip()))
        if mine:
            rankings = store.dense_search_many(np.stack([vectors[q] for q in mine]), max(k, retriever.candidates),
                                               scope)
            retriever.prime_dense(dict(zip(mine, rankings, strict=True)))


def _hits(store: Store, ranking: Ranking) -> list[Hit]:
    chunks = {c.id: c for c in store.get_chunks([cid for cid, _ in ranking])}
    hits: list[Hit] = []
    for chunk_id, score in ranking:
        c = chunks.get(chunk_id)
        if c is not None:
            hits.append(Hit(len(hits) + 1, score, c.source, c.page, c.start, c.end, c.text, c.id, c.doc_id,
                            c.page_label))
    return hits
