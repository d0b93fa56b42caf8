"""Refuse request bodies over their limit with 413, before they are parsed or written to disk.

Uploads (``/api/documents``) may be ``server.max_upload_mb``; every other body (JSON for /api and /v1) at most
``MAX_JSON_BODY_BYTES``: a conversation is cut from its oldest turns long before that, so only a broken or hostile
client reaches it. The refusal has the shape of the path's API: OpenAI's under /v1, lorag's (with a code the page
translates) elsewhere.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PREFIX = "/api/documents"
MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and part headers around the file itself
MAX_JSON_BODY_BYTES = 16 * 1024 * 1024
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: count request body bytes as they arrive; past the path's limit, answer 413."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int, max_json_bytes: int = MAX_JSON_BODY_BYTES) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.max_json_bytes = max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        upload = path.startswith(UPLOAD_PREFIX)
        limit = self.max_upload_bytes + MULTIPART_OVERHEAD if upload else self.max_json_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send, path)
            return
        seen = 0
        too_large = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # The body parser may turn our exception into its own 400; once over the limit, send 413 instead.
            nonlocal refused
            if not too_large:
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(send, path)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            if not refused:
                await self._refuse(send, path)

    async def _refuse(self, send: Send, path: str) -> None:
        body = json.dumps(self._error(path), ensure_ascii=False).encode()
        headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _error(self, path: str) -> dict[str, Any]:
        if path.startswith(UPLOAD_PREFIX):
            mb = round(self.max_upload_bytes / (1024 * 1024), 2)
            return {"error": f"upload too large: the limit is {mb:g} MB (server.max_upload_mb)",
                    "code": "payload_too_large", "params": {"limit_mb": mb}}
        mb = round(self.max_json_bytes / (1024 * 1024), 2)
        message = (f"request body too large: the limit is {mb:g} MB. Send long text as a document "
                   f"(POST /api/documents), not inside a request.")
        if path.startswith("/v1"):
            return {"error": {"message": message, "type": "invalid_request_error", "param": None,
                              "code": "request_too_large"}}
        return {"error": message, "code": "body_too_large", "params": {"limit_mb": mb}}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
