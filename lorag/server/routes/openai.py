"""OpenAI-compatible API: ``lorag-rag`` answers from the documents with sources; the configured model chats plainly.

- ``lorag-rag`` searches all documents, ``lorag-rag:<collection>`` one collection; a follow-up is searched
  with the conversation, the client's system message is added to the RAG prompt.
- The configured model's own id, and a chat client's background tasks sent to any model (Open WebUI's
  title / tags / follow-up / query prompts, see client_tasks.py), run on the plain model without retrieval,
  in the model queue's task lane: they never delay a user's question.
- Usage comes with every whole reply, and as a final chunk when ``stream_options.include_usage`` is set;
  ``finish_reason`` is "length" when ``max_tokens`` cut the answer.

Usage (the official client)::

    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="<token or anything on loopback>")
    client.chat.completions.create(model="lorag-rag", messages=[{"role": "user", "content": "有給休暇は何日？"}])
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator as PyGenerator
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from lorag.config import Config
from lorag.errors import LoragError
from lorag.server.auth import require_reader
from lorag.server.client_tasks import client_task
from lorag.server.errors import NotFoundError
from lorag.server.gate import TASK, USER
from lorag.server.routes import get_state
from lorag.server.routes.openai_reply import Reply
from lorag.server.routes.openai_schema import ChatRequest, check_supported
from lorag.server.sse import sse_response
from lorag.server.state import ServerState

log = logging.getLogger(__name__)
router = APIRouter(tags=["openai"], dependencies=[Depends(require_reader)])
State = Annotated[ServerState, Depends(get_state)]
RAG_MODEL = "lorag-rag"
BUNDLED_MODEL = "gemma-3-270m"
BASE_MODEL_STOPS = ["\n質問", "\n\n"]
TASK_MAX_TOKENS = 128  # titles, tags and follow-up lists are short; a runaway base model must not hold the queue


def configured_model_id(config: Config) -> str:
    """The name the configured LLM goes by in /v1/models."""
    model = config.settings.llm.model
    if not model:
        return BUNDLED_MODEL
    return Path(model).name if "/" in model and not model.endswith(":latest") else model


@router.get("/v1/models")
def list_models(state: State) -> dict[str, Any]:
    """The RAG model, one ``lorag-rag:<collection>`` per collection when there are several, and the plain model."""
    now = int(time.time())
    names = state.collection_names()
    ids = [RAG_MODEL, *(f"{RAG_MODEL}:{c}" for c in names if len(names) > 1), configured_model_id(state.config)]
    return {"object": "list", "data": [{"id": i, "object": "model", "created": now, "owned_by": "lorag"} for i in ids]}


@router.post("/v1/chat/completions", responses={200: {"content": {"text/event-stream": {}}}})
async def chat_completions(body: ChatRequest, state: State) -> Any:
    """Chat completion, streamed (OpenAI chunk format ending with ``data: [DONE]``) or whole."""
    check_supported(body)
    collection = _collection(state, body.model)
    plain = body.model != RAG_MODEL and collection is None
    task = client_task(body.turns(), body.metadata)
    if task:
        log.debug("client task %r to %s: answered by the plain model without retrieval", task, body.model)
    if not plain and not task and not any(m.role == "user" and m.text().strip() for m in body.messages):
        raise LoragError("the lorag-rag model needs a user message with the question.")
    if plain or task:
        work, lane = (lambda: _plain_pieces(state, body, bool(task))), TASK
    else:
        work, lane = (lambda: _rag_pieces(state, body, collection)), USER
    # A whole (non-streamed) task reply is unseen until it ends: a question may interrupt it and it starts over.
    pieces = state.gate.stream(work, lane=lane, restartable=lane == TASK and not body.stream)
    reply = Reply(body.model, include_usage=body.include_usage)
    if body.stream:
        return sse_response(reply.chunks(pieces))
    return await reply.whole(pieces)


def _collection(state: ServerState, model: str) -> str | None:
    """The collection a ``lorag-rag:<name>`` model id names (None for the others); 404 for unknown models."""
    known = {RAG_MODEL, configured_model_id(state.config), state.config.settings.llm.model} - {""}
    if model in known:
        return None
    name = model.removeprefix(f"{RAG_MODEL}:")
    if name != model and name in state.collection_names():
        return name
    choices = sorted(known | {f"{RAG_MODEL}:{c}" for c in state.collection_names()})
    raise NotFoundError(f"model {model!r} not found; use one of: {', '.join(choices)}.")


def _plain_pieces(state: ServerState, body: ChatRequest, task: bool) -> Iterator[dict[str, Any]]:
    """The plain model's answer: text pieces, then ``{"usage", "finish_reason"}`` (runs on the model thread)."""
    from lorag.generate.base import GenerationRequest
    from lorag.rag.answer import history_budget
    from lorag.rag.conversation import fit_history

    llm = state.config.settings.llm
    generator = state.generator()
    messages = fit_history(body.turns(), history_budget(state.config) * 3)
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    # A base model (no chat template) gets the conversation as a 質問/答え completion prompt instead.
    shape: dict[str, Any] = (
        {"messages": messages} if generator.supports_chat
        else {"prompt": completion_prompt(messages), "stop": [*stop, *BASE_MODEL_STOPS]}
    )
    limit = body.limit or llm.max_tokens
    request = GenerationRequest(
        max_tokens=min(limit, TASK_MAX_TOKENS) if task else limit,
        temperature=llm.temperature if body.temperature is None else body.temperature,
        top_p=body.top_p or llm.top_p,
        seed=body.seed,
        **({"stop": stop} | shape),
    )
    for text in generator.stream(request):
        yield {"text": text}
    usage = generator.usage
    finish = "length" if usage.completion_tokens >= request.max_tokens else "stop"
    yield {"usage": usage, "finish_reason": finish}


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


def _rag_pieces(state: ServerState, body: ChatRequest, collection: str | None) -> Iterator[dict[str, Any]]:
    """The RAG answer: text pieces, the sources text with ``citations``, then usage and finish reason."""
    from lorag.rag.answer import answer_stream

    turns = body.turns()
    system = "\n".join(t["content"] for t in turns if t["role"] == "system" and t["content"].strip()) or None
    chat = [t for t in turns if t["role"] in ("user", "assistant")]
    last_user = max(i for i, t in enumerate(chat) if t["role"] == "user" and t["content"].strip())
    history, question = chat[:last_user], chat[last_user]["content"]
    config = state.config
    if body.limit:  # the request's limit, without touching the shared config
        llm = config.settings.llm.model_copy(update={"max_tokens": body.limit})
        config = Config(config.settings.model_copy(update={"llm": llm}), config.path)
    generator = state.generator()
    finish = "stop"
    events: PyGenerator[dict[str, Any], None, None] = answer_stream(
        config, question, generator=generator, history=history, system=system, collection=collection)
    try:
        for event in events:
            if event["type"] == "token":
                yield {"text": event["text"]}
            elif event["type"] == "done":
                named = state.name_sources(event["citations"])
                finish = event.get("finish_reason", "stop")
                yield {"text": sources_text(named), "citations": named}
    finally:
        events.close()
    yield {"usage": generator.usage, "finish_reason": finish}


def sources_text(citations: list[dict[str, Any]]) -> str:
    """The sources appended to a RAG answer, one line each; those the answer cited come first, marked ✓."""
    from lorag.rag.prompts import page_text

    if not citations:
        return ""
    lines = [f"[{c['n']}] {c.get('name') or c['source']}{page_text(c.get('page'), c.get('page_label'))}"
             + (" ✓" if c.get("cited") else "") for c in citations]
    return "\n\n出典 / Sources:\n" + "\n".join(lines)
