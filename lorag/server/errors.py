"""Turn lorag's errors into JSON replies ``{"error": message}`` with a status code that says whose fault it was."""

from __future__ import annotations

import logging
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


async def _lorag_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.LoragError)
    return JSONResponse(error_body(exc), status_code=status_for(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"), "message": str(err.get("msg", ""))}
        for err in exc.errors()
    ]
    text = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return JSONResponse({"error": f"invalid request: {text}", "fields": fields}, status_code=422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A bug, not a user mistake: log the traceback on the server, send one line to the client.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    app.add_exception_handler(e.LoragError, _lorag_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
