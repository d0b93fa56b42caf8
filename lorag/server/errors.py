"""Turn lorag's errors into JSON replies with a status code that says whose fault it was.

The body is ``{"error": message, "code": code, "params": {...}}``: ``message`` is English, ``code`` and
``params`` let the web page show the error in the user's language (static/i18n.js, ``errors.<code>``).
``coded(exc, code, **params)`` gives an error its code; otherwise the code comes from the error's class
(``PathNotAllowedError`` → ``path_not_allowed``). Under /v1 the body takes OpenAI's shape instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, TypeVar

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
    (e.DiskFullError, 507),
    (e.InputError, 400),
    (e.SystemFaultError, 503),
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


E = TypeVar("E", bound=BaseException)


def coded(exc: E, code: str, **params: Any) -> E:
    """``exc`` with a translatable ``code`` and the ``params`` its message is made of."""
    exc.code = code  # type: ignore[attr-defined]
    exc.params = params  # type: ignore[attr-defined]
    return exc


def error_code(exc: BaseException) -> str:
    """The error's code: the one given with ``coded``, else its class name in snake case without "Error"."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    name = type(exc).__name__.removesuffix("Error") or "Lorag"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def error_body(exc: e.LoragError) -> dict[str, Any]:
    """``{"error", "code", "params"}``, plus ``fields`` when the cause was a validation error."""
    params = getattr(exc, "params", None)
    body: dict[str, Any] = {"error": str(exc), "code": error_code(exc),
                            "params": dict(params) if isinstance(params, Mapping) else {}}
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
        if status == 422:
            status = 400  # OpenAI answers every malformed request with 400 invalid_request_error
        kind = OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        body = {"error": {"message": body["error"], "type": kind, "param": body.get("param"),
                          "code": body.get("openai_code"),
                          **({"fields": body["fields"]} if "fields" in body else {})}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _lorag_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.LoragError)
    body = error_body(exc)
    if getattr(exc, "param", None):  # an OpenAI request error names the field it is about
        body["param"], body["openai_code"] = exc.param, body["code"]  # type: ignore[attr-defined]
    return reply(request, body, status_for(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    body = {"error": str(exc.detail), "code": f"http_{exc.status_code}", "params": {}}
    return reply(request, body, exc.status_code, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"), "message": str(err.get("msg", ""))}
        for err in exc.errors()
    ]
    text = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    body = {"error": f"invalid request: {text}", "code": "invalid_request", "params": {"details": text},
            "fields": fields, "param": fields[0]["field"] if fields else None}
    return reply(request, body, 422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    fault = e.recognise(exc)  # a full disk, a read-only mount, a refused connection … named like the CLI names them
    if fault is not None:
        return await _lorag_error(request, fault)
    # A bug, not a user mistake: log the traceback on the server, send one line to the client.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    body = {"error": f"internal error ({type(exc).__name__}); see the server log", "code": "internal",
            "params": {"type": type(exc).__name__}}
    return reply(request, body, 500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    app.add_exception_handler(e.LoragError, _lorag_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
