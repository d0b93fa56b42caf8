"""One log line per request: client, method, path, status and duration; never the query, the token or the body.

The query string is left out because it can carry the user's search text; bodies and headers (the bearer
token) are never read. A streamed response is logged when its last byte is sent, so the duration is the
whole answer's.

Usage::

    app.add_middleware(AccessLog)     # lines go to the "lorag.access" logger at INFO
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("lorag.access")


class AccessLog:
    """ASGI middleware that logs each HTTP request once it has been answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def logged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            client = scope.get("client")
            host = client[0] if client else "-"
            ms = (time.perf_counter() - started) * 1000
            # status 0: the client went away before an answer was started
            log.info('%s "%s %s" %s %.0f ms', host, scope["method"], scope["path"], status or "-", ms)
