"""Follow-up retrieval evaluation: R@k of a follow-up turn's query over dialogues about the sample corpus.

Each dialogue is a list of turns ``{"user", "assistant"?, "source", "answer"?}``; every turn after the first
is a follow-up whose ``source`` document should be among the top ``k`` hits of its retrieval query.

Usage::

    dialogues = load_dialogues(Path("tests/rag/dialogues.json"))
    follow_up_recall(config, dialogues, lambda messages: retrieval_query(messages, "lexical"))
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lorag.config import Config
from lorag.rag.conversation import Message
from lorag.rag.retrieve import search

QueryFn = Callable[[list[Message]], str]


def load_dialogues(path: Path) -> list[dict[str, Any]]:
    """The dialogues of a JSON file (a list of ``{"id", "turns"}``)."""
    return list(json.loads(path.read_text(encoding="utf-8")))


def follow_ups(dialogues: Sequence[dict[str, Any]]) -> Iterator[tuple[list[Message], str]]:
    """(the conversation up to and including a follow-up, the follow-up's expected source file name)."""
    for dialogue in dialogues:
        turns = dialogue["turns"]
        for i in range(1, len(turns)):
            messages: list[Message] = []
            for turn in turns[:i]:
                messages.append({"role": "user", "content": turn["user"]})
                messages.append({"role": "assistant", "content": turn.get("assistant", "")})
            messages.append({"role": "user", "content": turns[i]["user"]})
            yield messages, turns[i]["source"]


def follow_up_recall(config: Config, dialogues: Sequence[dict[str, Any]], query: QueryFn, k: int = 3) -> float:
    """The share of follow-ups whose expected document is among the top ``k`` hits of ``query(messages)``."""
    found = total = 0
    for messages, source in follow_ups(dialogues):
        names = [Path(hit.source).name for hit in search(config, query(messages), k)]
        found += source in names
        total += 1
    return found / max(total, 1)
