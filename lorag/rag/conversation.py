"""Conversations: the retrieval query for a follow-up, and a history that always fits the model's context.

A follow-up such as 「それは入社何か月後からですか？」 names nothing to search for; the documents it asks
about were named in earlier turns. Two ways to build a standalone query:

- ``lexical``: the follow-up, then the previous user turns (most recent first). Measured on the sample
  corpus (tests/rag/dialogues.json, 56 follow-ups): follow-up R@3 0.79 with the last message alone,
  1.00 this way; topic switches ("ところで、…") still find the new topic because its words lead.
- ``llm``: the model rewrites the follow-up as a standalone question. Worth it only with an
  instruction-tuned model; the bundled Gemma 3 270M base model rewrites poorly (R@3 0.96 with its rewrite
  in front of the lexical query, bench/multiturn.py).

``follow_up_mode(setting, generator)`` resolves ``retrieval.follow_ups: auto`` to ``llm`` for chat models and
``lexical`` for base models.

Usage::

    query = retrieval_query([{"role": "user", "content": "有給休暇は何日？"},
                             {"role": "assistant", "content": "10日です。"},
                             {"role": "user", "content": "それは入社何か月後から？"}])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lorag.generate.base import GenerationRequest, Generator, complete

log = logging.getLogger(__name__)

Message = dict[str, str]
FOLLOW_UP_MODES = ("auto", "llm", "lexical", "last")
PREVIOUS_TURNS = 2  # earlier user turns added to a follow-up's query; older ones rarely help and can mislead
MAX_QUERY_CHARS = 1000
HISTORY_TURN_CHARS = 600  # one earlier turn, as shown to the model
CONDENSE_EXAMPLE = (
    "前の質問：有給休暇は何日もらえますか？\n"
    "続きの質問：それは入社何か月後からですか？\n"
    "書き換えた質問：有給休暇は入社何か月後からもらえますか？\n\n"
)
CONDENSE_SYSTEM = (
    "会話の最後の質問を、前の会話を読んでいない人にも意味が通じる一つの質問に書き換えてください。"
    "書き換えた質問だけを出力してください。"
)


def user_texts(messages: Sequence[Message]) -> list[str]:
    """The non-empty user turns, oldest first."""
    return [m["content"].strip() for m in messages if m.get("role") == "user" and m.get("content", "").strip()]


def lexical_query(messages: Sequence[Message], previous: int = PREVIOUS_TURNS) -> str:
    """The last user turn followed by up to ``previous`` earlier user turns, most recent first."""
    users = user_texts(messages)
    if not users:
        return ""
    parts = [users[-1], *reversed(users[-1 - previous:-1])] if previous else [users[-1]]
    return " ".join(parts)[:MAX_QUERY_CHARS]


def follow_up_mode(setting: str, generator: Generator | None) -> str:
    """The concrete mode for ``retrieval.follow_ups``: ``auto`` means llm for chat models, lexical otherwise."""
    if setting != "auto":
        return setting
    return "llm" if generator is not None and generator.supports_chat else "lexical"


def retrieval_query(messages: Sequence[Message], mode: str = "lexical", generator: Generator | None = None) -> str:
    """The text to search the documents with for the last user turn of ``messages``."""
    users = user_texts(messages)
    if not users:
        return ""
    if len(users) == 1 or mode == "last":
        return users[-1][:MAX_QUERY_CHARS]
    if mode == "llm" and generator is not None:
        condensed = condense(messages, generator)
        if condensed:
            # The lexical query follows, in case the rewrite dropped or garbled the topic.
            return f"{condensed} {lexical_query(messages)}"[:MAX_QUERY_CHARS]
    return lexical_query(messages)


def condense(messages: Sequence[Message], generator: Generator) -> str:
    """Ask the model to rewrite the last user turn as a standalone question; "" when it produced nothing usable."""
    users = user_texts(messages)
    previous = "\n".join(f"前の質問：{u[:HISTORY_TURN_CHARS]}" for u in users[-1 - PREVIOUS_TURNS:-1])
    request: dict[str, Any] = {"max_tokens": 64, "temperature": 0.0, "top_p": 1.0}
    if generator.supports_chat:
        prompt = f"{previous}\n続きの質問：{users[-1]}"
        req = GenerationRequest(messages=[{"role": "system", "content": CONDENSE_SYSTEM},
                                          {"role": "user", "content": prompt}], **request)
    else:
        prompt = f"{CONDENSE_EXAMPLE}{previous}\n続きの質問：{users[-1]}\n書き換えた質問："
        req = GenerationRequest(prompt=prompt, stop=["\n"], **request)
    try:
        text = complete(generator, req)
    except Exception:  # a failed rewrite must not fail the question: fall back to the lexical query
        log.warning("condensing the follow-up failed; using the lexical query", exc_info=True)
        return ""
    text = text.split("</think>", 1)[-1].strip()  # a reasoning model's thoughts are not the question
    text = text.splitlines()[0].strip() if text else ""
    return text.removeprefix("書き換えた質問：").strip()[:MAX_QUERY_CHARS]


def fit_history(messages: Sequence[Message], budget_chars: int) -> list[Message]:
    """The most recent messages whose text fits ``budget_chars``, each earlier turn cut to a readable length.

    Older turns are dropped first; the last message is always kept (cut to the budget if it alone is
    larger), so a 200-turn or 1 MB conversation never overflows the model's context.
    """
    kept: list[Message] = []
    used = 0
    for i, message in enumerate(reversed(messages)):
        text = message.get("content", "")
        if i > 0:
            text = text if len(text) <= HISTORY_TURN_CHARS else text[:HISTORY_TURN_CHARS] + "…"
        if i > 0 and used + len(text) > budget_chars:
            break
        text = text[:max(budget_chars - used, 0)] if i == 0 else text
        kept.append({"role": message.get("role", "user"), "content": text})
        used += len(text)
    return list(reversed(kept))
