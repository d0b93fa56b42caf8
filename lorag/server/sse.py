"""Server-sent events: format one event, and the response headers that keep proxies from buffering."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_event(event: str | None, data: Any, event_id: int | None = None) -> str:
    """One SSE frame; ``data`` is sent as JSON unless it is already a string."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"id: {event_id}\n" if event_id is not None else ""
    head += f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n"


def sse_response(frames: AsyncIterator[str]) -> StreamingResponse:
    """A text/event-stream response over ``frames``."""
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)
