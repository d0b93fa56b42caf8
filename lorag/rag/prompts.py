"""The RAG prompts: numbered sources, the question, earlier turns of the conversation and the client's system text.

Usage::

    build_messages("有給休暇は何日？", hits)                      # chat models
    build_prompt("有給休暇は何日？", hits, history=[...])          # base models: ends with 質問：…\\n答え：
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lorag.config import Config
from lorag.rag.conversation import Message
from lorag.rag.retrieve import Hit

SYSTEM_PROMPT = (
    "あなたは社内資料に基づいて質問に答えるアシスタントです。"
    "与えられた資料だけを根拠に、日本語で簡潔に答えてください。"
    "根拠にした資料の番号を [1] のように文末に付けてください。"
    "資料に答えがない場合は「資料には記載がありません」と答えてください。"
)
COMPLETION_HEADER = "以下の資料だけを使って質問に答えてください。根拠にした資料の番号を [1] のように書いてください。"
# A base model keeps writing new questions after its answer; these end the answer.
COMPLETION_STOPS = ["\n質問", "<end_of_turn>", "\n資料", "\n["]


def source_label(hit: Hit) -> str:
    """A short human-readable location: file name, printed page (and PDF page) and character offsets."""
    return f"{Path(hit.source).name}{page_text(hit.page, hit.page_label)} ({hit.start}-{hit.end})"


def page_text(page: int | None, label: str | None = None) -> str:
    """`` p.3``; with a printed label that differs from the PDF index: `` p. 30 (PDF page 58)``; "" without a page."""
    if page is None:
        return ""
    if label and label != str(page):
        return f" p. {label} (PDF page {page})"
    return f" p.{page}"


def _sources_block(hits: Sequence[Hit]) -> str:
    return "\n\n".join(f"[{i}] 出典: {source_label(h)}\n{h.text}" for i, h in enumerate(hits, start=1))


def _system(extra: str | None) -> str:
    # The client's system text (e.g. `llm -s`) comes after ours: it may set tone or format, not drop the sources.
    return f"{SYSTEM_PROMPT}\n\n{extra.strip()}" if extra and extra.strip() else SYSTEM_PROMPT


def build_messages(question: str, hits: Sequence[Hit], history: Sequence[Message] = (),
                   system: str | None = None) -> list[dict[str, str]]:
    """Chat messages: the Japanese system prompt (plus the client's), earlier turns, then sources and question."""
    user = f"資料:\n{_sources_block(hits)}\n\n質問：{question}"
    earlier = [{"role": m["role"], "content": m["content"]} for m in history if m["role"] in ("user", "assistant")]
    return [{"role": "system", "content": _system(system)}, *earlier, {"role": "user", "content": user}]


def build_prompt(question: str, hits: Sequence[Hit], history: Sequence[Message] = (),
                 system: str | None = None) -> str:
    """A completion prompt for base models, ending with ``質問：…\\n答え：``."""
    header = f"{COMPLETION_HEADER}\n{system.strip()}" if system and system.strip() else COMPLETION_HEADER
    earlier = "".join(f"{'質問' if m['role'] == 'user' else '答え'}：{m['content']}\n"
                      for m in history if m["role"] in ("user", "assistant") and m["content"].strip())
    conversation = f"これまでの会話：\n{earlier}\n" if earlier else ""
    return f"{header}\n\n{_sources_block(hits)}\n\n{conversation}質問：{question}\n答え："


def fit_hits(hits: list[Hit], config: Config, reserved_chars: int = 0) -> list[Hit]:
    """Drop the lowest-ranked hits that would overflow the model's context (about 1 token per character)."""
    llm = config.settings.llm
    budget = max(256, llm.context - llm.max_tokens - 256 - reserved_chars)
    kept: list[Hit] = []
    used = 0
    for hit in hits:
        used += len(hit.text) + 40
        if kept and used > budget:
            break
        kept.append(hit if len(hit.text) <= budget else _truncated(hit, budget))
    return kept


def _truncated(hit: Hit, chars: int) -> Hit:
    from dataclasses import replace

    return replace(hit, end=hit.start + chars, text=hit.text[:chars])
