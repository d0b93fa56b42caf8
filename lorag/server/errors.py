"""Turn lorag's errors into JSON replies ``{"error": message}`` with a status code that says whose fault it was."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from lorag import errors as e

log = logging.getLogger(__name__)

# Most specific first: the first isinstance match wins.
STATUS_BY_ERROR: list[tuple[type[e.LoragError], int]] = [
    (e.PathNotAllowedError, 403),
    (e.ConfigError, 422),
    (e.PlanError, 422),
    (e.AdapterError, 400),
    (e.ModelError, 400),
    (e.IngestError, 400),
    (e.DiskSpaceError, 507),
    (e.BuildError, 409),
    (e.OllamaError, 503),
    (e.GenerationError, 503),
    (e.StoreError, 503),
]


class NotFoundError(e.LoragError):
    """A job, document or file the request names does not exist."""


class ConflictError(e.LoragError):
    """The request does not fit the current state (e.g. cancelling a finished job)."""


class PayloadTooLargeError(e.LoragError):
    """An upload is larger than server.max_upload_mb."""


STATUS_BY_ERROR[:0] = [(NotFoundError, 404), (ConflictError, 409), (PayloadTooLargeError, 413)]


def status_for(exc: e.LoragError) -> int:
    """The HTTP status for a lorag error (400 when nothing more specific applies)."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 400


def error_body(exc: e.LoragError) -> dict[str, Any]:
    """``{"error": message}``, plus ``fields`` when the cause was a validation error."""
    body: dict[str, Any] = {"error": str(exc)}
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        from lorag.config import field_errors

        body["fields"] = field_errors(cause)
    return body


OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                      404: "not_found_error", 422: "invalid_request_error"}


def reply(
    request: Request, body: dict[str, Any], status: int, headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON error; under /v1 in OpenAI's shape ``{"error": {"message", "type", ...}}`` so its clients show it."""
    if request.url.path.startswith("/v1/"):
        kind = OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        body = {"error": {"message": body["error"], "type": kind, "param": None, "code": None,
                          **({"fields": body["fields"]} if "fields" in body else {})}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _lorag_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.LoragError)
    return reply(request, error_body(exc), status_for(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return reply(request, {"error": str(exc.detail)}, exc.status_code, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"), "message": str(err.get("msg", ""))}
        for err in exc.errors()
    ]
    text = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return reply(request, {"error": f"invalid request: {text}", "fields": fields}, 422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A bug, not a user mistake: log the traceback on the server, send one line to the client.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return reply(request, {"error": f"internal error ({type(exc).__name__}); see the server log"}, 500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    app.add_exception_handler(e.LoragError, _lorag_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
