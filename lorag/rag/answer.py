"""Answer a question from the retrieved chunks, streaming tokens, then the numbered sources.

Usage::

    for event in answer_stream(load_config(), "有給休暇は何日ですか？"):
        if event["type"] == "token":
            print(event["text"], end="")
        elif event["type"] == "done":
            print(event["citations"])
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator as PyGenerator
from collections.abc import Iterator, Sequence
from typing import Any

from lorag.config import Config
from lorag.generate.base import GenerationRequest, Generator
from lorag.rag.conversation import Message, fit_history, follow_up_mode, retrieval_query
from lorag.rag.prompts import (  # noqa: F401  (re-exported: the prompt's pieces were first defined here)
    COMPLETION_HEADER,
    COMPLETION_STOPS,
    SYSTEM_PROMPT,
    build_messages,
    build_prompt,
    fit_hits,
    source_label,
)
from lorag.rag.relevance import relevant_hits, search_in
from lorag.rag.retrieve import Hit

log = logging.getLogger(__name__)
AnswerEvent = dict[str, Any]

SENTENCE_ENDS = "。！？"
MIN_LINE_ANSWER = 15  # a line break ends a base model's answer once it has this many characters
THINK_END = "</think>"
_CITE = re.compile(r"\[(\d{1,2})\]")
NO_DOCUMENTS = "資料が見つかりませんでした。先に `lorag ingest` で文書を取り込んでください。"


def default_generator(config: Config) -> Generator:
    """The process's generator for ``config`` (lorag.generate.cache), loaded on first use."""
    from lorag.build.auto import build_for_generator
    from lorag.generate.cache import generators

    return generators.get(config, build=build_for_generator)


def answer_stream(config: Config, question: str, top_k: int | None = None, generator: Generator | None = None,
                  *, history: Sequence[Message] = (), system: str | None = None,
                  collection: str | None = None) -> PyGenerator[AnswerEvent, None, None]:
    """Retrieve for the conversation, then stream the answer: "sources", "token" events, and a final "done".

    ``history`` holds the earlier turns (``{"role": "user"|"assistant", "content"}``, oldest first): a follow-up
    is searched with them (see lorag.rag.conversation) and the model sees the recent ones. ``system`` is the
    client's system text, added to the RAG prompt. "done" carries ``finish_reason``: "length" when the answer
    was cut by ``llm.max_tokens``, else "stop".
    """
    turns = fit_history([*history, {"role": "user", "content": question}], history_budget(config))
    earlier, question = turns[:-1], turns[-1]["content"]
    gen = generator
    mode: str = config.settings.retrieval.follow_ups
    if earlier and mode in ("auto", "llm"):
        gen = gen or default_generator(config)
        mode = follow_up_mode(mode, gen)
    query = retrieval_query(turns, mode, gen)
    log.debug("retrieval query (%s, %d earlier turns): %r", mode, len(earlier), query)
    found = search_in(config, query, top_k, collection=collection)
    hits = fit_hits(relevant_hits(config, query, found, collection=collection), config,
                    reserved_chars=sum(len(m["content"]) for m in turns) + len(system or ""))
    yield {"type": "sources", "hits": [h.to_dict() for h in hits], "query": query}
    if not hits:
        yield {"type": "token", "text": NO_DOCUMENTS}
        yield {"type": "done", "answer": NO_DOCUMENTS, "citations": [], "finish_reason": "stop"}
        return
    gen = gen or default_generator(config)
    request = _request(config, gen, question, hits, earlier, system)
    pieces: list[str] = []
    stream = _strip_reasoning(gen.stream(request), _thinks(gen))
    if request.prompt is not None:
        stream = _first_answer(stream)
    try:
        for text in stream:
            pieces.append(text)
            yield {"type": "token", "text": text}
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # a client that left mid-answer stops the generation here
    answer = _after_think("".join(pieces)).strip()
    finish = "length" if gen.usage.completion_tokens >= request.max_tokens else "stop"
    yield {"type": "done", "answer": answer, "citations": citations(answer, hits), "finish_reason": finish}


def history_budget(config: Config) -> int:
    """Characters of conversation the model is shown: a quarter of its context, the rest is for sources."""
    return max(512, config.settings.llm.context // 4)


def _request(config: Config, gen: Generator, question: str, hits: list[Hit], history: Sequence[Message],
             system: str | None) -> GenerationRequest:
    llm = config.settings.llm
    common: dict[str, Any] = {"max_tokens": llm.max_tokens, "temperature": llm.temperature, "top_p": llm.top_p}
    if gen.supports_chat:
        return GenerationRequest(messages=build_messages(question, hits, history, system), **common)
    return GenerationRequest(prompt=build_prompt(question, hits, history, system), stop=list(COMPLETION_STOPS),
                             **common)


def citations(answer: str, hits: list[Hit]) -> list[dict[str, Any]]:
    """Every source, numbered as in the prompt; the ones the answer names as [n] first (in the order named),
    marked ``cited``."""
    named = [int(n) for n in dict.fromkeys(_CITE.findall(answer)) if 1 <= int(n) <= len(hits)]
    order = named + [i for i in range(1, len(hits) + 1) if i not in named]
    return [_citation(i, hits[i - 1], i in named) for i in order]


def _citation(n: int, hit: Hit, cited: bool) -> dict[str, Any]:
    item = {"n": n, "source": hit.source, "page": hit.page, "start": hit.start, "end": hit.end, "cited": cited}
    if hit.page_label:
        item["page_label"] = hit.page_label
    return item


def _thinks(gen: Generator) -> bool:
    name = gen.name.lower()
    return gen.thinks or "deepseek-r1" in name or "r1-distill" in name


def _after_think(text: str) -> str:
    return text.split(THINK_END, 1)[1] if THINK_END in text else text.replace("<think>", "")


def _strip_reasoning(pieces: Iterator[str], thinks: bool) -> Iterator[str]:
    """Hold back a reasoning model's thoughts until ``</think>``; pass other models' text straight through."""
    buffer = ""
    holding = thinks
    started = False  # has answer text been shown yet?
    for piece in pieces:
        if not holding and not started and not buffer and piece.lstrip().startswith("<think>"):
            holding = True
        if not holding:
            started = started or bool(piece.strip())
            yield piece
            continue
        buffer += piece
        if THINK_END in buffer:
            rest = buffer.split(THINK_END, 1)[1].lstrip()
            holding, buffer, started = False, "", True
            if rest:
                yield rest
    if holding and buffer:
        # The model never closed its reasoning: show what it wrote rather than nothing.
        yield buffer.replace("<think>", "").strip()


def _first_answer(pieces: Iterator[str]) -> Iterator[str]:
    """A base model rambles on after answering: end at the first sentence end, or at a line break once
    the answer has ``MIN_LINE_ANSWER`` characters; leading blank lines are dropped."""
    text = ""
    try:
        for piece in pieces:
            if not text.strip():
                piece = piece.lstrip()
                if not piece:
                    continue
            end = _answer_end(text + piece, len(text))
            if end is not None:
                if end > len(text):
                    yield (text + piece)[len(text) : end]
                return
            text += piece
            yield piece
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()  # stops the backend from generating tokens nobody will read


def _answer_end(text: str, since: int) -> int | None:
    """Where the answer in ``text`` ends, looking only at characters from ``since`` on."""
    for i in range(since, len(text)):
        if text[i] in SENTENCE_ENDS:
            return i + 1
        if text[i] == "\n" and len(text[:i].strip()) >= MIN_LINE_ANSWER:
            return i
    return None
