"""Answer a question from the retrieved chunks, streaming tokens, then the numbered sources.

Usage::

    for event in answer_stream(load_config(), "有給休暇は何日ですか？"):
        if event["type"] == "token":
            print(event["text"], end="")
        elif event["type"] == "done":
            print(event["citations"])
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lorag.config import Config
from lorag.generate.base import GenerationRequest, Generator
from lorag.rag.retrieve import Hit, search

AnswerEvent = dict[str, Any]

SYSTEM_PROMPT = (
    "あなたは社内資料に基づいて質問に答えるアシスタントです。"
    "与えられた資料だけを根拠に、日本語で簡潔に答えてください。"
    "根拠にした資料の番号を [1] のように文末に付けてください。"
    "資料に答えがない場合は「資料には記載がありません」と答えてください。"
)
COMPLETION_HEADER = "以下の資料だけを使って質問に答えてください。根拠にした資料の番号を [1] のように書いてください。"
# A base model keeps writing new questions after its answer; these end the answer.
COMPLETION_STOPS = ["\n質問", "<end_of_turn>", "\n資料", "\n["]
SENTENCE_ENDS = "。！？"
MIN_LINE_ANSWER = 15  # a line break ends a base model's answer once it has this many characters
THINK_END = "</think>"
_CITE = re.compile(r"\[(\d{1,2})\]")


def source_label(hit: Hit) -> str:
    """A short human-readable location: file name, page and character offsets."""
    page = f" p.{hit.page}" if hit.page is not None else ""
    return f"{Path(hit.source).name}{page} ({hit.start}-{hit.end})"


def _sources_block(hits: list[Hit]) -> str:
    return "\n\n".join(f"[{i}] 出典: {source_label(h)}\n{h.text}" for i, h in enumerate(hits, start=1))


def build_messages(question: str, hits: list[Hit]) -> list[dict[str, str]]:
    """Chat messages: the Japanese system prompt, then the numbered sources and the question."""
    user = f"資料:\n{_sources_block(hits)}\n\n質問：{question}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def build_prompt(question: str, hits: list[Hit]) -> str:
    """A completion prompt for base models, ending with ``質問：…\\n答え：``."""
    return f"{COMPLETION_HEADER}\n\n{_sources_block(hits)}\n\n質問：{question}\n答え："


def fit_hits(hits: list[Hit], config: Config) -> list[Hit]:
    """Drop the lowest-ranked hits that would overflow the model's context (about 1 token per character)."""
    llm = config.settings.llm
    budget = max(256, llm.context - llm.max_tokens - 256)
    kept: list[Hit] = []
    used = 0
    for hit in hits:
        used += len(hit.text) + 40
        if kept and used > budget:
            break
        kept.append(hit if len(hit.text) <= budget else _truncated(hit, budget))
    return kept


def _truncated(hit: Hit, chars: int) -> Hit:
    return Hit(hit.rank, hit.score, hit.source, hit.page, hit.start, hit.start + chars, hit.text[:chars],
               hit.chunk_id, hit.doc_id)


def default_generator(config: Config) -> Generator:
    """The process's generator for ``config`` (lorag.generate.cache), loaded on first use."""
    from lorag.build.auto import build_for_generator
    from lorag.generate.cache import generators

    return generators.get(config, build=build_for_generator)


def answer_stream(config: Config, question: str, top_k: int | None = None,
                  generator: Generator | None = None) -> Iterator[AnswerEvent]:
    """Retrieve, then stream the answer: a "sources" event, "token" events, and a final "done" event."""
    hits = fit_hits(search(config, question, top_k), config)
    yield {"type": "sources", "hits": [h.to_dict() for h in hits]}
    if not hits:
        text = "資料が見つかりませんでした。先に `lorag ingest` で文書を取り込んでください。"
        yield {"type": "token", "text": text}
        yield {"type": "done", "answer": text, "citations": []}
        return
    gen = generator or default_generator(config)
    request = _request(config, gen, question, hits)
    pieces: list[str] = []
    stream = _strip_reasoning(gen.stream(request), _thinks(gen))
    if request.prompt is not None:
        stream = _first_answer(stream)
    for text in stream:
        pieces.append(text)
        yield {"type": "token", "text": text}
    answer = _after_think("".join(pieces)).strip()
    yield {"type": "done", "answer": answer, "citations": citations(answer, hits)}


def _request(config: Config, gen: Generator, question: str, hits: list[Hit]) -> GenerationRequest:
    llm = config.settings.llm
    common: dict[str, Any] = {"max_tokens": llm.max_tokens, "temperature": llm.temperature, "top_p": llm.top_p}
    if gen.supports_chat:
        return GenerationRequest(messages=build_messages(question, hits), **common)
    return GenerationRequest(prompt=build_prompt(question, hits), stop=list(COMPLETION_STOPS), **common)


def citations(answer: str, hits: list[Hit]) -> list[dict[str, Any]]:
    """Every source, numbered as in the prompt; ``cited`` says whether the answer names it as [n]."""
    named = {int(n) for n in _CITE.findall(answer)}
    return [{"n": i, "source": h.source, "page": h.page, "start": h.start, "end": h.end, "cited": i in named}
            for i, h in enumerate(hits, start=1)]


def _thinks(gen: Generator) -> bool:
    name = gen.name.lower()
    return bool(getattr(gen, "thinks", False)) or "deepseek-r1" in name or "r1-distill" in name


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
