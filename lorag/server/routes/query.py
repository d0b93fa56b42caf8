"""Ask questions (streamed answer with citations) and search the documents (retrieval only)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from lorag.errors import LoragError
from lorag.limits import MAX_COLLECTION_CHARS, MAX_QUESTION_CHARS
from lorag.server.auth import require_reader
from lorag.server.errors import NotFoundError, coded, error_body
from lorag.server.routes import get_state
from lorag.server.sse import sse_event, sse_response
from lorag.server.state import ServerState

log = logging.getLogger(__name__)
router = APIRouter(tags=["query"], dependencies=[Depends(require_reader)])
State = Annotated[ServerState, Depends(get_state)]


class Turn(BaseModel):
    """One earlier turn of the conversation."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=200_000)


class QueryBody(BaseModel):
    """A question about the documents; ``history`` holds the earlier turns (oldest first) for a follow-up."""

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int | None = Field(None, ge=1, le=100)
    stream: bool = True
    history: list[Turn] = Field(default_factory=list, max_length=1000)
    collection: str | None = Field(None, min_length=1, max_length=MAX_COLLECTION_CHARS)


class QueryAnswer(BaseModel):
    """The whole answer, when ``stream`` is false."""

    answer: str
    citations: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    finish_reason: str = "stop"


def answer_events(state: ServerState, body: QueryBody) -> Iterator[dict[str, Any]]:
    """The RAG answer events for one question (runs on the model thread)."""
    from lorag.rag.answer import answer_stream

    history = [turn.model_dump() for turn in body.history]
    return answer_stream(state.config, body.question, top_k=body.top_k, generator=state.generator(),
                         history=history, collection=body.collection)


@router.post("/api/query", response_model=QueryAnswer, responses={200: {"content": {"text/event-stream": {}}}})
async def query(body: QueryBody, state: State) -> Any:
    """Answer a question from the documents: an SSE stream (sources, token..., done) or one JSON answer."""
    if body.collection is not None and body.collection not in state.collection_names():
        raise coded(NotFoundError(f"no collection named {body.collection!r}."), "collection_not_found",
                    name=body.collection)
    events = state.gate.stream(lambda: answer_events(state, body))
    if body.stream:
        return sse_response(_frames(state, events))
    sources: list[dict[str, Any]] = []
    async for event in events:
        if event["type"] == "sources":
            sources = event["hits"]
        elif event["type"] == "done":
            return QueryAnswer(answer=event["answer"], citations=state.name_sources(event["citations"]),
                               sources=state.name_sources(sources), finish_reason=event.get("finish_reason", "stop"))
    raise LoragError("the answer ended without a result.")


async def _frames(state: ServerState, events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    sources: list[dict[str, Any]] = []
    try:
        async for event in events:
            kind = event["type"]
            if kind == "sources":
                sources = state.name_sources(event["hits"])
                yield sse_event("sources", {"hits": sources, "query": event.get("query", "")})
            elif kind == "token":
                yield sse_event("token", {"text": event["text"]})
            elif kind == "done":
                citations = state.name_sources(event["citations"])
                done = {"answer": event["answer"], "citations": citations, "sources": sources,
                        "finish_reason": event.get("finish_reason", "stop")}
                yield sse_event("done", done)
    except LoragError as exc:
        yield sse_event("error", error_body(exc))
    except Exception as exc:  # the response has started: report in-band instead of a broken stream
        log.exception("query stream failed")
        yield sse_event("error", {"error": f"internal error ({type(exc).__name__}); see the server log",
                                  "code": "internal", "params": {"type": type(exc).__name__}})


@router.get("/api/search")
async def search(
    state: State,
    q: Annotated[str, Query(min_length=1, max_length=4000)],
    top_k: Annotated[int | None, Query(ge=1, le=100)] = None,
    collection: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Retrieval only: the best-matching passages for ``q`` (in one collection, or in all documents)."""
    from lorag.rag.store import validate_collection

    scope = None if collection is None else validate_collection(collection)

    from lorag.rag.store.factory import store_fingerprint, store_location
    from lorag.server.search_batch import batcher_for

    found = await batcher_for(state.gate).search(state.config, q, top_k, scope)  # one gate job for concurrent ones
    hits = state.name_sources([hit.to_dict() for hit in found])
    return {"query": q, "hits": hits, "store": store_fingerprint(store_location(state.config))}
