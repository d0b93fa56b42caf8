"""Answering: prompts, citations, reasoning stripped, and a real streamed answer from the bundled model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lorag.config import Config
from lorag.generate.base import GenerationRequest, Usage
from lorag.rag.answer import (
    COMPLETION_HEADER,
    SYSTEM_PROMPT,
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


def test_citations_list_the_cited_sources_first_and_mark_them() -> None:
    assert citations("10日です [2]。", HITS) == [
        {"n": 2, "source": "/docs/出張.pdf", "page": 2, "start": 5, "end": 30, "cited": True},
        {"n": 1, "source": "/docs/休暇.txt", "page": None, "start": 0, "end": 20, "cited": False}]
    assert [c["n"] for c in citations("[1] と [9] と [1]", HITS)] == [1, 2]  # [9] names no source
    assert [c["cited"] for c in citations("根拠なし", HITS)] == [False, False]


def test_source_label_shows_the_printed_page_when_it_differs() -> None:
    from dataclasses import replace

    from lorag.rag.prompts import page_text, source_label

    assert source_label(HITS[1]) == "出張.pdf p.2 (5-30)"
    assert page_text(58, "30") == " p. 30 (PDF page 58)"
    assert page_text(3, "3") == " p.3" and page_text(None, "iv") == ""
    if "page_label" in getattr(Hit, "__dataclass_fields__", {}):
        assert source_label(replace(HITS[1], page_label="xii")) == "出張.pdf p. xii (PDF page 2) (5-30)"


def test_history_and_the_client_system_text_reach_both_prompt_shapes() -> None:
    history = [{"role": "user", "content": "有給休暇は何日？"}, {"role": "assistant", "content": "10日です。"}]
    prompt = build_prompt("それはいつから？", HITS, history, system="敬語で答えてください。")
    assert prompt.startswith(COMPLETION_HEADER + "\n敬語で答えてください。\n\n[1] 出典")
    assert prompt.endswith("これまでの会話：\n質問：有給休暇は何日？\n答え：10日です。\n\n"
                           "質問：それはいつから？\n答え：")
    system, first, second, last = build_messages("それはいつから？", HITS, history, system="敬語で。")
    assert system["content"] == SYSTEM_PROMPT + "\n\n敬語で。"
    assert (first, second) == (history[0], history[1])
    assert last["content"].endswith("質問：それはいつから？")


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
    thinks = False  # declared False: answer_stream still knows DeepSeek-R1 by its name

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
    assert events[0]["hits"][0]["source"].endswith("休暇.txt")
    assert events[0]["query"] == "有給休暇は何日付与されますか"
    assert events[-1]["answer"] == "10日です [1]"
    assert events[-1]["citations"][0]["cited"] is True
    assert events[-1]["finish_reason"] == "stop"
    [request] = gen.requests
    assert request.messages is not None and request.prompt is None


def test_answer_stream_with_an_empty_store(rag_config: Config) -> None:
    events = list(answer_stream(rag_config, "何かありますか", generator=RecordingGenerator()))
    assert events[-1] == {"type": "done", "answer": events[1]["text"], "citations": [], "finish_reason": "stop"}
    assert "lorag ingest" in events[1]["text"]


@pytest.mark.slow
def test_real_answer_from_the_bundled_model(rag_config: Config, corpus: Path) -> None:
    ingest_paths(rag_config, [corpus])
    events = list(answer_stream(rag_config, "経費はいつまでに申請すればよいですか？", top_k=3))
    tokens = [e["text"] for e in events if e["type"] == "token"]
    done = events[-1]
    assert tokens and done["type"] == "done" and done["answer"] == "".join(tokens).strip() != ""
    assert 1 <= len(done["citations"]) <= 3
    assert any(c["source"].endswith("経費.docx") for c in done["citations"])
    assert done["finish_reason"] in ("stop", "length")


def test_a_follow_up_is_searched_with_the_conversation(rag_config: Config, corpus: Path) -> None:
    ingest_paths(rag_config, [corpus])
    gen = RecordingGenerator()
    history = [{"role": "user", "content": "有給休暇は何日付与されますか"},
               {"role": "assistant", "content": "10日です [1]"}]
    events = list(answer_stream(rag_config, "それはいつからですか", generator=gen, history=history,
                                system="短く答えてください。"))
    # A chat model condenses the follow-up first (this one answers "10日です [1]"), then the lexical query.
    assert events[0]["query"] == "10日です [1] それはいつからですか 有給休暇は何日付与されますか"
    assert events[0]["hits"][0]["source"].endswith("休暇.txt")
    condensing, request = gen.requests
    assert condensing.max_tokens == 64 and request.messages is not None
    assert request.messages[0]["content"].endswith("短く答えてください。")
    assert request.messages[1:3] == history


def test_unrelated_sources_are_cut_and_length_is_reported(rag_config: Config, corpus: Path) -> None:
    ingest_paths(rag_config, [corpus])
    update = rag_config.settings.retrieval.model_copy(update={"min_relevance": 0.0})
    everything = Config(rag_config.settings.model_copy(update={"retrieval": update}), rag_config.path)
    gen = RecordingGenerator()
    question = "有給休暇は何日付与されますか"
    all_hits = next(iter(answer_stream(everything, question, top_k=5, generator=gen)))["hits"]
    cut = next(iter(answer_stream(rag_config, question, top_k=5, generator=gen)))["hits"]
    assert len(all_hits) == 5 and 1 <= len(cut) < 5
    assert cut[0]["chunk_id"] == all_hits[0]["chunk_id"]
    assert {h["chunk_id"] for h in cut} <= {h["chunk_id"] for h in all_hits}
    assert [h["rank"] for h in cut] == list(range(1, len(cut) + 1))
    short = rag_config.settings.llm.model_copy(update={"max_tokens": 3})
    limited = Config(rag_config.settings.model_copy(update={"llm": short}), rag_config.path)

    class Counting(RecordingGenerator):
        def stream(self, request: GenerationRequest) -> Iterator[str]:
            self.usage = Usage(prompt_tokens=10, completion_tokens=request.max_tokens)
            yield "10日"

    assert list(answer_stream(limited, "有給休暇は何日", generator=Counting()))[-1]["finish_reason"] == "length"
