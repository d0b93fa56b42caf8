"""OpenAI-compatible API: ``lorag-rag`` answers from the documents with sources; the configured model chats plainly.

Usage (the official client)::

    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="<token or anything on loopback>")
    client.chat.completions.create(model="lorag-rag", messages=[{"role": "user", "content": "有給休暇は何日？"}])
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from lorag.config import Config
from lorag.errors import LoragError
from lorag.server.auth import require_reader
from lorag.server.errors import NotFoundError
from lorag.server.routes import get_state
from lorag.server.sse import sse_response
from lorag.server.state import ServerState

router = APIRouter(tags=["openai"], dependencies=[Depends(require_reader)])
State = Annotated[ServerState, Depends(get_state)]
RAG_MODEL = "lorag-rag"
BUNDLED_MODEL = "gemma-3-270m"
BASE_MODEL_STOPS = ["\n質問", "\n\n"]


class ChatMessage(BaseModel):
    role: str = Field(max_length=32)
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The subset of OpenAI's chat completion request that lorag honours (other fields are ignored)."""

    model: str = Field(min_length=1, max_length=512)
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(None, ge=1, le=32768)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None


def configured_model_id(config: Config) -> str:
    """The name the configured LLM goes by in /v1/models."""
    model = config.settings.llm.model
    if not model:
        return BUNDLED_MODEL
    return Path(model).name if "/" in model and not model.endswith(":latest") else model


@router.get("/v1/models")
def list_models(state: State) -> dict[str, Any]:
    """The RAG model and the configured plain model."""
    now = int(time.time())
    ids = [RAG_MODEL, configured_model_id(state.config)]
    return {"object": "list", "data": [{"id": i, "object": "model", "created": now, "owned_by": "lorag"} for i in ids]}


@router.post("/v1/chat/completions", responses={200: {"content": {"text/event-stream": {}}}})
async def chat_completions(body: ChatRequest, state: State) -> Any:
    """Chat completion, streamed (OpenAI chunk format ending with ``data: [DONE]``) or whole."""
    known = {RAG_MODEL, configured_model_id(state.config), state.config.settings.llm.model}
    if body.model not in known:
        raise NotFoundError(f"model {body.model!r} not found; use one of: {', '.join(sorted(known - {''}))}.")
    if body.model == RAG_MODEL and not any(m.role == "user" and m.text().strip() for m in body.messages):
        raise LoragError("the lorag-rag model needs a user message with the question.")
    pieces = state.gate.stream(lambda: _pieces(state, body))
    reply = _Reply(body.model)
    if body.stream:
        return sse_response(reply.chunks(pieces))
    return await reply.whole(pieces)


def _pieces(state: ServerState, body: ChatRequest) -> Iterator[dict[str, Any]]:
    """Text pieces ``{"text"}``, then one ``{"usage"}`` or ``{"sources"}`` (runs on the model thread)."""
    if body.model == RAG_MODEL:
        yield from _rag_pieces(state, body)
        return
    from lorag.generate.base import GenerationRequest

    llm = state.config.settings.llm
    generator = state.generator()
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    # A base model (no chat template) gets the conversation as a 質問/答え completion prompt instead.
    shape: dict[str, Any] = (
        {"messages": messages} if generator.supports_chat
        else {"prompt": completion_prompt(messages), "stop": [*stop, *BASE_MODEL_STOPS]}
    )
    request = GenerationRequest(
        max_tokens=body.max_completion_tokens or body.max_tokens or llm.max_tokens,
        temperature=llm.temperature if body.temperature is None else body.temperature,
        top_p=body.top_p or llm.top_p,
        seed=body.seed,
        **({"stop": stop} | shape),
    )
    for text in generator.stream(request):
        yield {"text": text}
    yield {"usage": generator.usage}


def completion_prompt(messages: list[dict[str, str]]) -> str:
    """A chat as a plain prompt for base models: system text, then 質問：/答え： turns, ending with 答え：."""
    lines = []
    for message in messages:
        if message["role"] == "system":
            lines.append(message["content"] + "\n")
        elif message["role"] == "assistant":
            lines.append(f"答え：{message['content']}")
        else:
            lines.append(f"質問：{message['content']}")
    return "\n".join(lines) + "\n答え："


def _rag_pieces(state: ServerState, body: ChatRequest) -> Iterator[dict[str, Any]]:
    from lorag.rag.answer import answer_stream

    question = next((m.text() for m in reversed(body.messages) if m.role == "user"), "")
    config = state.config
    limit = body.max_completion_tokens or body.max_tokens
    if limit:  # the request's limit, without touching the shared config
        llm = config.settings.llm.model_copy(update={"max_tokens": limit})
        config = Config(config.settings.model_copy(update={"llm": llm}), config.path)
    generator = state.generator()
    for event in answer_stream(config, question, generator=generator):
        if event["type"] == "token":
            yield {"text": event["text"]}
        elif event["type"] == "done":
            named = state.name_sources(event["citations"])
            yield {"text": sources_text(named), "citations": named}
    yield {"usage": generator.usage}


def sources_text(citations: list[dict[str, Any]]) -> str:
    """The sources appended to a RAG answer, one line each."""
    if not citations:
        return ""
    lines = [f"[{c['n']}] {c.get('name') or c['source']}" + (f" (p.{c['page']})" if c.get("page") else "")
             for c in citations]
    return "\n\n出典 / Sources:\n" + "\n".join(lines)


class _Reply:
    """Shapes generated pieces as OpenAI chunks or one completion."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = "chatcmpl-" + uuid.uuid4().hex[:24]
        self.created = int(time.time())

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> str:
        import json

        chunk = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    async def chunks(self, pieces: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
        import json

        yield self._chunk({"role": "assistant", "content": ""})
        try:
            async for piece in pieces:
                if piece.get("text"):
                    yield self._chunk({"content": piece["text"]})
            yield self._chunk({}, finish="stop")
        except LoragError as exc:
            yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'lorag_error'}})}\n\n"
        yield "data: [DONE]\n\n"

    async def whole(self, pieces: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
        text, usage, citations = [], None, None
        async for piece in pieces:
            text.append(piece.get("text", ""))
            usage = piece.get("usage", usage)
            citations = piece.get("citations", citations)
        prompt, completion = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
        reply: dict[str, Any] = {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(text)},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }
        if citations is not None:
            reply["citations"] = citations
        return reply
