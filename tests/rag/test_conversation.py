"""Conversations: the retrieval query of a follow-up, LLM condensation, and histories that always fit."""

from __future__ import annotations

from collections.abc import Iterator

from lorag.generate.base import GenerationRequest, Usage
from lorag.rag.conversation import (
    condense,
    fit_history,
    follow_up_mode,
    lexical_query,
    retrieval_query,
    user_texts,
)

CHAT = [
    {"role": "user", "content": "有給休暇は何日もらえますか？"},
    {"role": "assistant", "content": "入社6か月後に10日です。[1]"},
    {"role": "user", "content": "繰り越せますか？"},
    {"role": "assistant", "content": "翌年度まで繰り越せます。"},
    {"role": "user", "content": "それは入社何か月後からですか？"},
]


class FixedGenerator:
    """A real Generator implementation with a fixed reply, recording its requests."""

    name = "fixed"
    thinks = False

    def __init__(self, reply: str, supports_chat: bool = False) -> None:
        self.reply, self.supports_chat = reply, supports_chat
        self.usage = Usage()
        self.requests: list[GenerationRequest] = []

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        self.requests.append(request)
        yield self.reply


def test_lexical_query_puts_the_follow_up_first_then_recent_user_turns() -> None:
    assert lexical_query(CHAT) == "それは入社何か月後からですか？ 繰り越せますか？ 有給休暇は何日もらえますか？"
    assert lexical_query(CHAT, previous=1) == "それは入社何か月後からですか？ 繰り越せますか？"
    assert lexical_query([{"role": "assistant", "content": "こんにちは"}]) == ""


def test_user_texts_skip_empty_turns_and_other_roles() -> None:
    messages = [{"role": "system", "content": "丁寧に"}, {"role": "user", "content": "  "},
                {"role": "tool", "content": "{}"}, {"role": "user", "content": " 質問 "}]
    assert user_texts(messages) == ["質問"]


def test_a_first_question_is_searched_as_it_is() -> None:
    assert retrieval_query(CHAT[:1], "lexical") == "有給休暇は何日もらえますか？"
    assert retrieval_query(CHAT, "last") == "それは入社何か月後からですか？"


def test_llm_condensation_with_a_base_model_uses_a_one_shot_completion() -> None:
    gen = FixedGenerator("有給休暇は入社何か月後からもらえますか？\n余計な続き")
    assert condense(CHAT, gen) == "有給休暇は入社何か月後からもらえますか？"
    [request] = gen.requests
    assert request.prompt is not None and request.stop == ["\n"] and request.temperature == 0.0
    assert request.prompt.endswith("前の質問：有給休暇は何日もらえますか？\n前の質問：繰り越せますか？\n"
                                   "続きの質問：それは入社何か月後からですか？\n書き換えた質問：")
    query = retrieval_query(CHAT, "llm", gen)
    assert query == "有給休暇は入社何か月後からもらえますか？ " + lexical_query(CHAT)


def test_llm_condensation_with_a_chat_model_sends_messages() -> None:
    gen = FixedGenerator("書き換えた質問：有給休暇は入社何か月後から？", supports_chat=True)
    assert condense(CHAT, gen) == "有給休暇は入社何か月後から？"
    assert gen.requests[0].messages is not None and gen.requests[0].messages[0]["role"] == "system"


def test_an_empty_rewrite_falls_back_to_the_lexical_query() -> None:
    assert retrieval_query(CHAT, "llm", FixedGenerator("   ")) == lexical_query(CHAT)


def test_auto_mode_condenses_only_with_chat_models() -> None:
    assert follow_up_mode("auto", FixedGenerator("", supports_chat=True)) == "llm"
    assert follow_up_mode("auto", FixedGenerator("")) == "lexical"
    assert follow_up_mode("auto", None) == "lexical"
    assert follow_up_mode("last", FixedGenerator("", supports_chat=True)) == "last"


def test_a_200_turn_conversation_keeps_the_newest_turns_within_budget() -> None:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"ターン{i}の内容です。"}
                for i in range(200)]
    kept = fit_history(messages, 100)
    assert kept[-1] == messages[-1]
    assert sum(len(m["content"]) for m in kept) <= 100
    assert [m["content"] for m in kept] == [m["content"] for m in messages[-len(kept):]]


def test_a_1_mb_conversation_is_cut_never_overflowing() -> None:
    huge = "あ" * 1_000_000
    kept = fit_history([{"role": "user", "content": huge}, {"role": "assistant", "content": huge},
                        {"role": "user", "content": "最後の質問"}], 1000)
    assert kept[-1]["content"] == "最後の質問"
    assert len(kept) == 2 and kept[0]["content"] == "あ" * 600 + "…"
    [alone] = fit_history([{"role": "user", "content": huge}], 1000)
    assert alone["content"] == "あ" * 1000
