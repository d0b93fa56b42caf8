"""Concurrent /api/search requests share model work: those that arrive while one waits are answered together.

The model gate runs one job at a time. Without batching, 50 searches are 50 jobs, each embedding one query.
Here the first request queues one job; every request arriving before that job starts joins it, and the job
embeds all their queries in one batch and scores them against the vectors in one pass (one BLAS call instead of
one 150 MB read per query at 100k chunks), then answers each as soon as its lexical side is ranked.
Requests arriving while a batch runs form the next one, so batches grow exactly as fast as the load does.

Usage::

    hits = await batcher_for(state.gate).search(config, "有給休暇", 5, None)
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from concurrent.futures import Future
from typing import Any

from lorag.config import Config
from lorag.rag.retrieve import Hit
from lorag.server.gate import ModelGate

Request = tuple[str, int | None, str | None]  # (query, top_k, collection)


class SearchBatcher:
    """Collects searches that wait for the model gate into one gate job."""

    def __init__(self, gate: ModelGate) -> None:
        self._gate = gate
        self._lock = threading.Lock()
        self._pending: list[tuple[Config, Request, Future[list[Hit]]]] = []
        self._jobs: set[asyncio.Task[Any]] = set()
        self.batches: list[int] = []  # the size of every batch run, for tests and benchmarks

    async def search(self, config: Config, query: str, top_k: int | None, collection: str | None) -> list[Hit]:
        """The hits of a hybrid search, computed together with other searches waiting at the same time."""
        future: Future[list[Hit]] = Future()
        with self._lock:
            self._pending.append((config, (query, top_k, collection), future))
            first = len(self._pending) == 1
        if first:
            task = asyncio.ensure_future(self._gate.run(self._run))
            self._jobs.add(task)
            task.add_done_callback(self._jobs.discard)
        return await asyncio.wrap_future(future)

    def _run(self) -> None:
        from lorag.rag.retrieve import search_batch

        with self._lock:
            batch, self._pending = self._pending, []
        batch = [b for b in batch if b[2].set_running_or_notify_cancel()]  # drop clients that went away
        self.batches.append(len(batch))
        by_config: dict[int, list[int]] = {}
        for i, (config, _, _) in enumerate(batch):
            by_config.setdefault(id(config), []).append(i)  # a config reload mid-batch keeps each request's own
        for indexes in by_config.values():
            config = batch[indexes[0]][0]
            done = 0
            try:
                for hits in search_batch(config, [batch[i][1] for i in indexes]):
                    batch[indexes[done]][2].set_result(hits)  # answered now, not at the end of the batch
                    done += 1
            except BaseException as exc:
                for i in indexes[done:]:
                    batch[i][2].set_exception(exc)


_batchers: weakref.WeakKeyDictionary[ModelGate, SearchBatcher] = weakref.WeakKeyDictionary()


def batcher_for(gate: ModelGate) -> SearchBatcher:
    """The batcher in front of ``gate`` (one per server)."""
    batcher = _batchers.get(gate)
    if batcher is None:
        batcher = _batchers.setdefault(gate, SearchBatcher(gate))
    return batcher
