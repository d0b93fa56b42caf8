"""Shape generated pieces as OpenAI chat completion chunks (SSE) or as one chat completion.

Pieces come from the model thread: ``{"text"}`` pieces, optionally ``{"citations"}``, and one final
``{"usage", "finish_reason"}``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from lorag.errors import LoragError

log = logging.getLogger(__name__)


def usage_dict(usage: Any) -> dict[str, int]:
    """OpenAI's usage object from a generator's ``Usage`` (zeros when there is none)."""
    prompt, completion = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class Reply:
    """One chat completion's id, model and timestamps, shared by its chunks."""

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = "chatcmpl-" + uuid.uuid4().hex[:24]
        self.created = int(time.time())

    def _frame(self, choices: list[dict[str, Any]], **extra: Any) -> str:
        chunk: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                 "model": self.model, "choices": choices, **extra}
        if self.include_usage and "usage" not in chunk:
            chunk["usage"] = None  # OpenAI sends usage: null on every chunk but the last when asked for usage
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return self._frame([{"index": 0, "delta": delta, "finish_reason": finish}], **extra)

    async def chunks(self, pieces: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
        """The SSE frames: a role chunk, content chunks, the finish chunk, the usage chunk if asked, [DONE]."""
        yield self._chunk({"role": "assistant", "content": ""})
        usage, finish, citations = None, "stop", None
        try:
            async for piece in pieces:
                if not isinstance(piece, dict):  # only whole replies restart; nothing to show here
                    continue
                if piece.get("text"):
                    yield self._chunk({"content": piece["text"]})
                usage = piece.get("usage", usage)
                finish = piece.get("finish_reason", finish)
                citations = piece.get("citations", citations)
            extra = {"citations": citations} if citations is not None else {}
            yield self._chunk({}, finish=finish, **extra)
            if self.include_usage:
                yield self._frame([], usage=usage_dict(usage))
        except LoragError as exc:
            yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'lorag_error'}}, ensure_ascii=False)}\n\n"
        except Exception as exc:  # the response has started: report in-band instead of a broken stream
            log.exception("chat completion stream failed")
            error = {"message": f"internal error ({type(exc).__name__}); see the server log", "type": "server_error"}
            yield f"data: {json.dumps({'error': error})}\n\n"
        yield "data: [DONE]\n\n"

    async def whole(self, pieces: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
        """One ``chat.completion`` object with usage (and ``citations`` for the RAG model)."""
        from lorag.server.gate import RESTART

        text: list[str] = []
        usage, citations, finish = None, None, "stop"
        async for piece in pieces:
            if piece is RESTART:  # a question went first; the task starts over
                text, usage, citations, finish = [], None, None, "stop"
                continue
            text.append(piece.get("text", ""))
            usage = piece.get("usage", usage)
            citations = piece.get("citations", citations)
            finish = piece.get("finish_reason", finish)
        reply: dict[str, Any] = {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(text)},
                         "finish_reason": finish}],
            "usage": usage_dict(usage),
        }
        if citations is not None:
            reply["citations"] = citations
        return reply
