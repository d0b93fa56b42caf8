"""One model at work at a time: a single worker thread runs retrieval, ingest and generation in arrival order.

llama.cpp contexts and the embedders are not safe to share between threads, and on a 2-core machine two
generations at once would only slow each other down. Requests wait in a FIFO queue instead; ``waiting``
says how long the queue is, so clients and the load benchmark can see the queueing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_ITEM, _ERROR, _END = "item", "error", "end"


class ModelGate:
    """Serialize model work on one thread and hand results back to async code."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lorag-model")
        self._count_lock = threading.Lock()
        self.waiting = 0
        self.served = 0
        self.busy_s = 0.0  # time the model thread spent working, to tell service time from queueing

    def stats(self) -> dict[str, float]:
        """Queue length, finished jobs and busy seconds of the model thread."""
        return {"waiting": self.waiting, "served": self.served, "busy_s": round(self.busy_s, 3)}

    def _done(self, started: float) -> None:
        with self._count_lock:
            self.served += 1
            self.busy_s += time.perf_counter() - started

    def _enter(self) -> None:
        with self._count_lock:
            self.waiting += 1

    def _started(self) -> None:
        with self._count_lock:
            self.waiting -= 1

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work()`` on the model thread and return its result."""
        self._enter()

        def job() -> T:
            self._started()
            started = time.perf_counter()
            try:
                return work()
            finally:
                self._done(started)

        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    async def stream(self, work: Callable[[], Iterable[T]]) -> AsyncIterator[T]:
        """Iterate ``work()`` on the model thread, yielding its items as they come; stop early if abandoned."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def post(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # the event loop is gone (server shutting down)
                stop.set()

        def job() -> None:
            self._started()
            started = time.perf_counter()
            try:
                if stop.is_set():  # the client left while we waited in the queue
                    return
                items = work()
                try:
                    for item in items:
                        post(_ITEM, item)
                        if stop.is_set():
                            break
                finally:
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()
            except BaseException as exc:
                post(_ERROR, exc)
            finally:
                self._done(started)
                post(_END, None)

        self._enter()
        loop.run_in_executor(self._executor, job)
        try:
            while True:
                kind, value = await queue.get()
                if kind == _END:
                    return
                if kind == _ERROR:
                    raise value
                yield value
        finally:
            stop.set()

    def close(self) -> None:
        """Stop accepting work; running work finishes in the background."""
        self._executor.shutdown(wait=False, cancel_futures=True)
