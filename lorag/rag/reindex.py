"""Re-embed a store's chunks in place with the configured embedder, one document per transaction.

Each document records the embedder its vectors came from (``embedder_id`` in its metadata), so a reindex that
is stopped resumes where it was: the documents already done are skipped. The store switches to the new
embedder (store meta ``embedder``) only when every document is done; until then queries use the old one.

Usage::

    result = reindex_store(load_config())
    print(result.documents, result.chunks)
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from lorag.config import Config
from lorag.rag.embedders import EMBEDDER_IDS, passage_embedder
from lorag.rag.pipeline import ProgressFn, emit
from lorag.rag.store import Chunk, NewChunk, open_store


@dataclass
class ReindexResult:
    """What a reindex did."""

    embedder: str
    documents: int = 0
    skipped: int = 0
    chunks: int = 0
    seconds: float = 0.0


def reindex_store(config: Config, progress: ProgressFn | None = None, force: bool = False) -> ReindexResult:
    """Re-embed every document whose vectors are not from ``retrieval.embedder`` (all of them with ``force``)."""
    started = time.perf_counter()
    target = config.settings.retrieval.embedder
    target_id = EMBEDDER_IDS[target]
    embedder = passage_embedder(target, config.settings.ingest.embed_device)
    result = ReindexResult(target)
    with open_store(config) as store:
        with store.transaction():
            store.set_meta("reindex_target", target)
        tokens = dict(store.iter_tokens())
        by_doc: dict[int, list[Chunk]] = defaultdict(list)
        for chunk in store.get_chunks(list(tokens)):
            by_doc[chunk.doc_id].append(chunk)
        documents = store.list_documents()
        todo = [d for d in documents if force or d.meta.get("embedder_id") != target_id]
        result.skipped = len(documents) - len(todo)
        total = sum(len(by_doc[d.id]) for d in todo)
        for doc in todo:
            chunks = by_doc[doc.id]
            done_before = result.chunks

            def embed_progress(done: int, _total: int, base: int = done_before, path: str = doc.path) -> None:
                emit(progress, "embed", None, base + done, total, document=path)

            vectors = embedder.embed_passages([c.text for c in chunks], progress=embed_progress)
            new = [NewChunk(c.text, c.page, c.start, c.end, tokens[c.id], vectors[i] if embedder.dim else None,
                            c.page_label) for i, c in enumerate(chunks)]
            store.replace_document(doc.path, doc.sha256, doc.mtime, doc.size, new, collection=doc.collection,
                                   meta={**doc.meta, "embedder_id": target_id}, added_at=doc.added_at)
            result.documents += 1
            result.chunks += len(new)
        with store.transaction():
            store.set_meta("embedder", target)
            store.set_meta("embedder_id", target_id)
            store.set_meta("reindex_target", "")
    result.seconds = time.perf_counter() - started
    return result
