"""Answering: prompts, citations, reasoning stripped, and a real streamed answer from the bundled model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lorag.config import Config
from lorag.generate.base import GenerationRequest, Usage
from lorag.rag.answer import (
    _first_answer,
    _strip_reasoning,
    answer_stream,
    build_messages,
    build_prompt,
    citations,
)
from lorag.rag.ingest import ingest_paths
from lorag.rag.retrieve import Hit

HITS = [Hit(1, 0.03, "/docs/休暇.txt", None, 0, 20, "有給休暇は10日です。", 1, 1),
        Hit(2, 0.02, "/docs/出張.pdf", 2, 5, 30, "日当は2,000円です。", 2, 2)]


def test_completion_prompt_for_base_models() -> None:
    prompt = build_prompt("有給休暇は何日？", HITS)
    assert prompt.endswith("\n\n質問：有給休暇は何日？\n答え：")
    sources = "[1] 出典: 休暇.txt (0-20)\n有給休暇は10日です。\n\n[2] 出典: 出張.pdf p.2 (5-30)\n日当は2,000円です。"
    assert sources in prompt


def test_chat_messages_have_a_japanese_system_prompt() -> None:
    system, user = build_messages("有給休暇は何日？", HITS)
    assert system["role"] == "system" and "資料だけを根拠" in system["content"] and "[1]" in system["content"]
    assert user["role"] == "user" and user["content"].endswith("質問：有給休暇は何日？")


def test_citations_number_every_source_and_mark_the_cited_ones() -> None:
    assert citations("10日です [2]。", HITS) == [
        {"n": 1, "source": "/docs/休暇.txt", "page": None, "start": 0, "end": 20, "cited": False},
        {"n": 2, "source": "/docs/出張.pdf", "page": 2, "start": 5, "end": 30, "cited": True}]


def test_reasoning_is_held_back_until_think_ends() -> None:
    pieces = ["考え", "ています。", "</th", "ink>\n\n", "答えは", "10日です。"]
    assert list(_strip_reasoning(iter(pieces), thinks=True)) == ["答えは", "10日です。"]
    assert list(_strip_reasoning(iter(["<think>", "うーん", "</think>", "はい"]), thinks=False)) == ["はい"]
    assert list(_strip_reasoning(iter(["普通の", "答え"]), thinks=False)) == ["普通の", "答え"]
    assert list(_strip_reasoning(iter(["考えが", "終わらない"]), thinks=True)) == ["考えが終わらない"]


def test_base_model_answer_ends_at_its_first_sentence() -> None:
    assert "".join(_first_answer(iter(["\n\n", "給与は", "25日です。給与", "は25日"]))) == "給与は25日です。"
    pieces = ["短い\n", "続き", "もう少し長く続きます\n次の行"]
    assert "".join(_first_answer(iter(pieces))) == "短い\n続きもう少し長く続きます"


class RecordingGenerator:
    """A real Generator implementation (a fixed reply), used to check what answer_stream sends."""

    name = "deepseek-r1-distill-qwen-recorder"
    supports_chat = True

    def __init__(self) -> None:
        self.usage = Usage()
        self.requests: list[GenerationRequest] = []

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        self.requests.append(request)
        yield from ["資料を読むと", "10日。", "</think>", "10日です", " [1]"]


def test_answer_stream_events_with_a_chat_generator(rag_config: Config, corpus: Path) -> None:
    ingest_paths(rag_config, [corpus])
    gen = RecordingGenerator()
    events = list(answer_stream(rag_config, "有給休暇は何日付与されますか", top_k=2, generator=gen))
    assert [e["type"] for e in events] == ["sources", "token", "token", "done"]
    assert len(events[0]["hits"]) == 2 and events[0]["hits"][0]["source"].endswith("休暇.txt")
    assert events[-1]["answer"] == "10日です [1]"
    assert events[-1]["citations"][0]["cited"] is True
    [request] = gen.requests
    assert request.messages is not None and request.prompt is None


def test_answer_stream_with_an_empty_store(rag_config: Config) -> None:
    events = list(answer_stream(rag_config, "何かありますか", generator=RecordingGenerator()))
    assert events[-1] == {"type": "done", "answer": events[1]["text"], "citations": []}
    assert "lorag ingest" in events[1]["text"]


@pytest.mark.slow
def test_real_answer_from_the_bundled_model(rag_config: Config, corpus: Path) -> None:
    ingest_paths(rag_config, [corpus])
    events = list(answer_stream(rag_config, "経費はいつまでに申請すればよいですか？", top_k=3))
    tokens = [e["text"] for e in events if e["type"] == "token"]
    done = events[-1]
    assert tokens and done["type"] == "done" and done["answer"] == "".join(tokens).strip() != ""
    assert len(done["citations"]) == 3 and done["citations"][0]["source"].endswith("経費.docx")
