"""The one client for Ollama's documented HTTP API: blobs, create, show, tags, delete, version, chat and generate.

Every call has connect, read and write timeouts (a server that accepts the connection and never answers fails
in seconds, not never); the blob upload, idempotent by digest, is retried when the connection drops mid-way.

Usage::

    with OllamaClient("http://127.0.0.1:11434") as client:
        print(client.version(), [m["name"] for m in client.tags()])
        for event in client.stream("/api/chat", {"model": "tiny:latest", "messages": [...]}, "for 'tiny:latest'"):
            print(event["message"]["content"], end="")
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from lorag.errors import OllamaError

DEFAULT_HOST = "http://127.0.0.1:11434"
START_HINT = "Start it with `ollama serve` (or the Ollama app), or set llm.ollama_host to where it runs."
UPLOAD_ATTEMPTS = 3
LONG_READ_S = 600.0  # between two lines of a create or a generation (a large prompt is evaluated first)
_UPLOAD_CHUNK = 4 * 1024 * 1024
_NOT_CONNECTED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)
log = logging.getLogger(__name__)


class OllamaClient:
    """Talks to one Ollama server; every failure becomes an OllamaError that says what happened and what to do."""

    def __init__(self, host: str | None = None, timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
                 unreachable_hint: str = START_HINT) -> None:
        self.host = normalize_host(host or DEFAULT_HOST)
        self.timeout = timeout
        self.unreachable_hint = unreachable_hint
        self._long = httpx.Timeout(timeout, read=max(timeout, LONG_READ_S), write=max(timeout, LONG_READ_S))
        self._http = httpx.Client(base_url=self.host, timeout=httpx.Timeout(timeout), transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OllamaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def version(self) -> str:
        """The server's version string (GET /api/version)."""
        return str(self._json("GET", "/api/version").get("version", ""))

    def has_blob(self, digest: str) -> bool:
        """Whether the server already holds a blob (HEAD /api/blobs/<digest>: 200 yes, 404 no)."""
        resp = self._send("HEAD", f"/api/blobs/{digest}")
        if resp.status_code == 200:
            return True
        if resp.status_code == 404:
            return False
        raise self._error(resp, f"checking blob {digest}")

    def push_blob(self, path: Path, digest: str, progress: Callable[[int, int], None] | None = None) -> None:
        """Upload a file's raw bytes as a blob (POST /api/blobs/<digest>), streamed from disk, retried if cut off."""
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            try:
                resp = self._http.post(f"/api/blobs/{digest}", content=_file_chunks(path, progress),
                                       headers={"Content-Length": str(path.stat().st_size),
                                                "Content-Type": "application/octet-stream"}, timeout=self._long)
                break
            except _NOT_CONNECTED as exc:
                raise self._unreachable(exc) from exc
            except httpx.TransportError as exc:
                if attempt == UPLOAD_ATTEMPTS:
                    raise OllamaError(
                        f"Ollama at {self.host} answered, but the upload of {path.name} was cut off "
                        f"{UPLOAD_ATTEMPTS} times ({type(exc).__name__}).",
                        "Check the server's free disk space and its log, then build again "
                        "(blobs already on the server are not sent again).") from exc
                log.info("upload of %s cut off (%s); attempt %d of %d", path.name, type(exc).__name__, attempt + 1,
                         UPLOAD_ATTEMPTS)
        if resp.status_code == 400:
            raise OllamaError(f"Ollama rejected the upload of {path.name}: digest mismatch ({digest}).",
                              "The file changed during upload; rebuild and try again.")
        if resp.status_code not in (200, 201):
            raise self._error(resp, f"uploading {path.name}")

    def create(self, payload: dict[str, Any], progress: Callable[[str], None] | None = None) -> None:
        """POST /api/create and read every NDJSON line; an error line (even after a 200) raises."""
        name = payload.get("model")
        last = ""
        for event in self.stream("/api/create", payload, f"creating {name}", error_prefix=f"could not create {name}"):
            last = str(event.get("status", ""))
            if progress and last:
                progress(last)
        if last != "success":
            raise OllamaError(f"Ollama's create of {name} ended without success (last: {last!r}).")

    def show(self, name: str) -> dict[str, Any]:
        """Model details, template, parameters and capabilities (POST /api/show)."""
        resp = self._send("POST", "/api/show", json={"model": name})
        if resp.status_code == 404:
            raise OllamaError(f"Ollama at {self.host} has no model {name!r}.",
                              f"Pull it with `ollama pull {name}`, or build and register one with `lorag model build`.")
        return self._object(resp, "POST /api/show")

    def tags(self) -> list[dict[str, Any]]:
        """Installed models (GET /api/tags)."""
        models = self._json("GET", "/api/tags").get("models", [])
        return [m for m in models if isinstance(m, dict)] if isinstance(models, list) else []

    def delete(self, name: str) -> None:
        """Remove a model (DELETE /api/delete)."""
        resp = self._send("DELETE", "/api/delete", json={"model": name})
        if resp.status_code != 200:
            raise self._error(resp, f"deleting {name}")

    def stream(self, path: str, payload: dict[str, Any], doing: str,
               error_prefix: str = "") -> Iterator[dict[str, Any]]:
        """POST to an NDJSON endpoint (/api/chat, /api/generate, /api/create) and yield each line's object.

        An ``{"error": ...}`` line raises, also after a 200; ``doing`` ("for 'name:tag'") words the errors.
        """
        try:
            with self._http.stream("POST", path, json=payload, timeout=self._long) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise self._error(resp, doing)
                for line in resp.iter_lines():
                    if not line.strip():
                        continue
                    event = _parse_line(line)
                    if "error" in event:
                        what = error_prefix or f"at {self.host} failed {doing}"
                        raise OllamaError(f"Ollama {what}: {event['error']}")
                    yield event
        except httpx.TransportError as exc:
            raise self._transport_error(exc, f"POST {path}") from exc

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._object(self._send(method, path, **kwargs), f"{method} {path}")

    def _object(self, resp: httpx.Response, doing: str) -> dict[str, Any]:
        if resp.status_code != 200:
            raise self._error(resp, doing)
        try:
            data = resp.json()
        except ValueError as exc:
            raise OllamaError(f"Ollama at {self.host} answered {doing} with invalid JSON.") from exc
        return data if isinstance(data, dict) else {}

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, f"{method} {path}") from exc

    def _transport_error(self, exc: httpx.TransportError, doing: str) -> OllamaError:
        if isinstance(exc, _NOT_CONNECTED):
            return self._unreachable(exc)
        if isinstance(exc, httpx.TimeoutException):
            return OllamaError(f"Ollama at {self.host} accepted the connection but did not answer {doing} in time "
                               f"({type(exc).__name__}).", "Check that the server is healthy (restart it), then retry.")
        return OllamaError(f"Ollama at {self.host} broke off {doing} ({type(exc).__name__}: {exc}).",
                           "Check the server's log, then retry.")

    def _unreachable(self, exc: Exception) -> OllamaError:
        return OllamaError(f"cannot reach Ollama at {self.host} ({type(exc).__name__}).", self.unreachable_hint)

    def _error(self, resp: httpx.Response, doing: str) -> OllamaError:
        detail = error_detail(resp)
        return OllamaError(f"Ollama at {self.host} failed {doing}: HTTP {resp.status_code} {detail}".strip())


def error_detail(resp: httpx.Response) -> str:
    """The ``error`` text of an Ollama error body; the raw text when the body is not a JSON object."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"]:
        return data["error"][:300]
    return resp.text[:300]


def normalize_host(host: str) -> str:
    """A base URL from OLLAMA_HOST-style values, which are often ``host:port`` without a scheme."""
    host = host.strip().rstrip("/")
    return host if "://" in host else f"http://{host}"


def _file_chunks(path: Path, progress: Callable[[int, int], None] | None) -> Iterator[bytes]:
    total, sent = path.stat().st_size, 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_UPLOAD_CHUNK):
            sent += len(chunk)
            if progress:
                progress(sent, total)
            yield chunk


def _parse_line(line: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError:
        return {"error": f"unreadable progress line {line[:80]!r}"}
    return data if isinstance(data, dict) else {}
