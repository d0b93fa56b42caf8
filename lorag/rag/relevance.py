"""Which retrieved sources are worth showing: a relevance cutoff relative to the best match of the query.

Fused (RRF) scores say only how hits rank, not whether they are related at all: on the sample corpus an
unrelated document's chunk scores 0.9 of the best one. The BM25 score does separate them, because an
unrelated chunk shares only common words with the question. So a hit is kept when its BM25 score is at least
``min_relevance`` times the best BM25 score for the query, or when its dense similarity is within
``DENSE_MARGIN`` of the best one (a paraphrase that shares no words). The first hit is always kept.

Measured on the sample corpus (16 questions + 56 follow-ups, top 5): showing all, 2.57 sources of other
documents per answer; with the cutoff at 0.4, 0.68, and the expected document was never dropped
(0.5 dropped it twice).

Usage::

    hits = relevant_hits(config, query, search(config, query))
"""

from __future__ import annotations

from lorag.config import Config
from lorag.rag.retrieve import Hit, search

DENSE_MARGIN = 0.01  # e5 cosine: a paraphrase of the question sits this close to the best match


def relevant_hits(config: Config, query: str, hits: list[Hit], min_relevance: float | None = None,
                  collection: str | None = None) -> list[Hit]:
    """``hits`` without those below the relevance cutoff (``retrieval.min_relevance``; 0 keeps all)."""
    cutoff = config.settings.retrieval.min_relevance if min_relevance is None else min_relevance
    if cutoff <= 0 or len(hits) <= 1:
        return hits
    depth = max(config.settings.retrieval.candidates, len(hits))
    lexical = _scores(config, query, depth, "bm25", collection)
    dense = _scores(config, query, depth, "dense", collection)
    best_lexical = max(lexical.values(), default=0.0)
    best_dense = max(dense.values(), default=0.0)
    kept = [hits[0]]
    for hit in hits[1:]:
        strong_words = best_lexical > 0 and lexical.get(hit.chunk_id, 0.0) >= cutoff * best_lexical
        close_meaning = bool(dense) and dense.get(hit.chunk_id, -1.0) >= best_dense - DENSE_MARGIN
        if strong_words or close_meaning:
            kept.append(hit)
    return [_renumbered(hit, i) for i, hit in enumerate(kept, start=1)]


def search_in(config: Config, query: str, top_k: int | None = None, mode: str = "hybrid",
              collection: str | None = None) -> list[Hit]:
    """``search``, limited to ``collection`` when one is named."""
    return search(config, query, top_k, mode=mode, collection=collection)


def _scores(config: Config, query: str, depth: int, mode: str, collection: str | None) -> dict[int, float]:
    return {hit.chunk_id: hit.score for hit in search_in(config, query, depth, mode, collection)}


def _renumbered(hit: Hit, rank: int) -> Hit:
    if hit.rank == rank:
        return hit
    from dataclasses import replace

    return replace(hit, rank=rank)
