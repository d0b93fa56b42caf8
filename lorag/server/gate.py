"""One model at work at a time: a single worker thread runs retrieval, ingest and generation, users' questions first.

llama.cpp contexts and the embedders are not safe to share between threads, and on a 2-core machine two
generations at once would only slow each other down. Requests wait in a queue instead, in two lanes:
``USER`` (questions, searches, ingest) and ``TASK`` (a chat client's own background work: titles, tags,
follow-up suggestions). A task runs only when no user work is waiting, so it never delays a question;
within a lane the order is first come, first served. A question that arrives while a *restartable* task is
generating (a whole, non-streamed reply nobody has seen yet) stops that task, which goes back to the queue
and starts over after the question: the consumer sees ``RESTART`` and drops what it had collected.
``stats()`` reports the queue for /api/health.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

USER, TASK = 0, 1  # lanes: lower runs first
_ITEM, _ERROR, _END, _RESTART = "item", "error", "end", "restart"
RESTART: Any = object()  # yielded by a restartable stream when its work starts over


class ModelGate:
    """Serialize model work on one thread, users' work before background tasks, and hand results to async code."""

    def __init__(self) -> None:
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._waiting = [0, 0]
        self.running = 0
        self.served = 0
        self.preempted = 0
        self.busy_s = 0.0  # time the model thread spent working, to tell service time from queueing
        self._thread = threading.Thread(target=self._loop, name="lorag-model", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        """Requests queued and not yet started, both lanes."""
        return sum(self._waiting)

    def stats(self) -> dict[str, float]:
        """Queue depth (total and per lane), whether the model is busy, finished jobs and busy seconds."""
        with self._cond:
            return {"waiting": self.waiting, "waiting_questions": self._waiting[USER],
                    "waiting_tasks": self._waiting[TASK], "running": self.running,
                    "served": self.served, "preempted": self.preempted, "busy_s": round(self.busy_s, 3)}

    def _submit(self, job: Callable[[], None], lane: int, order: int | None = None) -> int:
        """Queue ``job``; ``order`` keeps a restarted job's place among its lane (first come, first served)."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the model gate is closed")
            order = next(self._order) if order is None else order
            self._waiting[lane] += 1
            heapq.heappush(self._queue, (lane, order, job))
            self._cond.notify()
            return order

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed and not self._queue:
                    return
                lane, _, job = heapq.heappop(self._queue)
                self._waiting[lane] -= 1
                self.running = 1
            started = time.perf_counter()
            try:
                job()
            finally:
                with self._cond:
                    self.running = 0
                    self.served += 1
                    self.busy_s += time.perf_counter() - started

    async def run(self, work: Callable[[], T], lane: int = USER) -> T:
        """Run ``work()`` on the model thread and return its result."""
        future: Future[T] = Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(work())
            except BaseException as exc:
                future.set_exception(exc)

        self._submit(job, lane)
        wrapped = asyncio.wrap_future(future)
        try:
            return await wrapped
        finally:
            future.cancel()  # a caller that went away while queued frees its place

    def _question_waiting(self) -> bool:
        return self._waiting[USER] > 0  # a plain read: at worst one more token before the task yields

    async def stream(self, work: Callable[[], Iterable[T]], lane: int = USER,
                     restartable: bool = False) -> AsyncIterator[T]:
        """Iterate ``work()`` on the model thread, yielding its items as they come; stop early if abandoned.

        With ``restartable`` (task lane only), a question that arrives meanwhile stops the work, which is queued
        again; ``RESTART`` is yielded so the consumer can drop the items it collected.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def post(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # the event loop is gone (server shutting down)
                stop.set()

        preemptible = restartable and lane == TASK
        place: list[int] = []

        def job() -> None:
            again = False
            try:
                if stop.is_set():  # the client left while we waited in the queue
                    return
                items = work()
                try:
                    for item in items:
                        post(_ITEM, item)
                        if stop.is_set():
                            break
                        if preemptible and self._question_waiting():
                            again = True
                            break
                finally:
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()  # a generator's finally blocks stop the backend
            except BaseException as exc:
                post(_ERROR, exc)
            finally:
                if again:
                    with self._cond:
                        self.preempted += 1
                    post(_RESTART, None)
                    self._submit(job, lane, place[0])
                else:
                    post(_END, None)

        place.append(self._submit(job, lane))
        try:
            while True:
                kind, value = await queue.get()
                if kind == _END:
                    return
                if kind == _ERROR:
                    raise value
                yield RESTART if kind == _RESTART else value
        finally:
            stop.set()

    def close(self) -> None:
        """Stop accepting work; queued work is dropped, running work finishes in the background."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._waiting = [0, 0]
            self._cond.notify_all()
