"""The model gate: one piece of model work at a time, in arrival order; abandoned streams stop early."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from lorag.server.gate import ModelGate


def test_work_is_serialized_in_arrival_order() -> None:
    gate = ModelGate()
    log: list[str] = []
    running = threading.Semaphore(1)

    def work(name: str) -> Iterator[str]:
        assert running.acquire(blocking=False), "two pieces of model work overlapped"
        try:
            for i in range(3):
                log.append(f"{name}{i}")
                time.sleep(0.01)
                yield f"{name}{i}"
        finally:
            running.release()

    async def consume(name: str) -> list[str]:
        return [item async for item in gate.stream(lambda: work(name))]

    async def main() -> list[list[str]]:
        return list(await asyncio.gather(consume("a"), consume("b"), consume("c")))

    assert asyncio.run(main()) == [["a0", "a1", "a2"], ["b0", "b1", "b2"], ["c0", "c1", "c2"]]
    assert log == ["a0", "a1", "a2", "b0", "b1", "b2", "c0", "c1", "c2"]
    assert gate.stats()["served"] == 3 and gate.stats()["waiting"] == 0
    gate.close()


def test_errors_reach_the_caller() -> None:
    gate = ModelGate()

    def broken() -> Iterator[str]:
        yield "first"
        raise ValueError("model crashed")

    async def main() -> list[str]:
        return [item async for item in gate.stream(broken)]

    with pytest.raises(ValueError, match="model crashed"):
        asyncio.run(main())
    assert asyncio.run(_run(gate, lambda: 41 + 1)) == 42
    gate.close()


async def _run(gate: ModelGate, fn: object) -> object:
    return await gate.run(fn)  # type: ignore[arg-type]


def test_abandoned_stream_stops_and_frees_the_model() -> None:
    gate = ModelGate()
    produced: list[int] = []
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            for i in range(10_000):
                produced.append(i)
                time.sleep(0.005)
                yield i
        finally:
            closed.set()

    async def main() -> int:
        stream = gate.stream(endless)
        async for item in stream:
            if item == 2:
                break
        await stream.aclose()  # what Starlette does when the client goes away
        return await gate.run(lambda: 7)

    assert asyncio.run(main()) == 7
    assert closed.wait(5)
    assert len(produced) < 100
    gate.close()


def test_background_tasks_wait_until_no_question_is_queued() -> None:
    from lorag.server.gate import TASK, USER

    gate = ModelGate()
    log: list[str] = []
    release = threading.Event()

    def blocker() -> str:
        release.wait(5)
        return "blocker"

    async def main() -> None:
        first = asyncio.ensure_future(gate.run(blocker))
        while gate.stats()["running"] == 0:
            await asyncio.sleep(0.01)
        jobs = [asyncio.ensure_future(gate.run(lambda name=name: log.append(name), lane=lane))
                for name, lane in (("title", TASK), ("tags", TASK), ("question 1", USER), ("question 2", USER))]
        while gate.stats()["waiting"] < 4:
            await asyncio.sleep(0.01)
        assert gate.stats()["waiting_questions"] == 2 and gate.stats()["waiting_tasks"] == 2
        release.set()
        await asyncio.gather(first, *jobs)

    asyncio.run(main())
    assert log == ["question 1", "question 2", "title", "tags"]
    assert gate.stats()["waiting"] == 0 and gate.stats()["served"] == 5
    gate.close()


def test_a_caller_that_leaves_while_queued_frees_its_place() -> None:
    gate = ModelGate()
    ran: list[str] = []
    release = threading.Event()

    async def main() -> None:
        first = asyncio.ensure_future(gate.run(lambda: release.wait(5)))
        while gate.stats()["running"] == 0:
            await asyncio.sleep(0.01)
        gone = asyncio.ensure_future(gate.run(lambda: ran.append("gone")))
        await asyncio.sleep(0.05)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        release.set()
        await first
        assert await gate.run(lambda: "next") == "next"

    asyncio.run(main())
    assert ran == []
    gate.close()


def test_a_question_interrupts_a_restartable_task_which_starts_over_after_it() -> None:
    from lorag.server.gate import RESTART, TASK

    gate = ModelGate()
    log: list[str] = []
    started = threading.Event()

    def task() -> Iterator[str]:
        log.append("task starts")
        started.set()
        for i in range(200):
            time.sleep(0.01)
            yield f"t{i}"
        log.append("task ends")

    async def main() -> list[object]:
        items: list[object] = []

        async def consume() -> None:
            async for item in gate.stream(task, lane=TASK, restartable=True):
                items.append(item)

        running = asyncio.ensure_future(consume())
        while not started.is_set():
            await asyncio.sleep(0.01)
        assert await gate.run(lambda: log.append("question") or "answer") == "answer"
        await running
        return items

    items = asyncio.run(main())
    assert log == ["task starts", "question", "task starts", "task ends"]
    restart = items.index(RESTART)
    assert items[restart + 1:] == [f"t{i}" for i in range(200)]  # the second run is whole
    assert gate.stats()["preempted"] == 1
    gate.close()
