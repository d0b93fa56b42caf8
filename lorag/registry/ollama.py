"""A small client for Ollama's documented HTTP API: blobs, create, show, tags, delete, version."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from lorag.errors import OllamaError

DEFAULT_HOST = "http://127.0.0.1:11434"
_UPLOAD_CHUNK = 4 * 1024 * 1024


class OllamaClient:
    """Talks to one Ollama server; every failure becomes an OllamaError that says what to do."""

    def __init__(self, host: str | None = None, timeout: float = 30.0, transport: httpx.BaseTransport | None = None):
        self.host = _normalize_host(host or DEFAULT_HOST)
        self._http = httpx.Client(base_url=self.host, timeout=httpx.Timeout(timeout, read=None), transport=transport)

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
        """Upload a file's raw bytes as a blob (POST /api/blobs/<digest>), streamed from disk."""
        total = path.stat().st_size

        def body() -> Iterator[bytes]:
            sent = 0
            with open(path, "rb") as fh:
                while chunk := fh.read(_UPLOAD_CHUNK):
                    sent += len(chunk)
                    if progress:
                        progress(sent, total)
                    yield chunk

        headers = {"Content-Length": str(total), "Content-Type": "application/octet-stream"}
        resp = self._send("POST", f"/api/blobs/{digest}", content=body(), headers=headers)
        if resp.status_code == 400:
            raise OllamaError(f"Ollama rejected the upload of {path.name}: digest mismatch ({digest}).",
                              "The file changed during upload; rebuild and try again.")
        if resp.status_code not in (200, 201):
            raise self._error(resp, f"uploading {path.name}")

    def create(self, payload: dict[str, Any], progress: Callable[[str], None] | None = None) -> None:
        """POST /api/create and read every NDJSON line; an error line (even after a 200) raises."""
        try:
            with self._http.stream("POST", "/api/create", json=payload) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise self._error(resp, f"creating {payload.get('model')}")
                last = ""
                for line in resp.iter_lines():
                    if not line.strip():
                        continue
                    event = _parse_line(line)
                    if "error" in event:
                        raise OllamaError(f"Ollama could not create {payload.get('model')}: {event['error']}")
                    last = str(event.get("status", ""))
                    if progress and last:
                        progress(last)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if last != "success":
            raise OllamaError(f"Ollama's create of {payload.get('model')} ended without success (last: {last!r}).")

    def show(self, name: str) -> dict[str, Any]:
        """Model details, template, parameters and capabilities (POST /api/show)."""
        return self._json("POST", "/api/show", json={"model": name})

    def tags(self) -> list[dict[str, Any]]:
        """Installed models (GET /api/tags)."""
        models: list[dict[str, Any]] = self._json("GET", "/api/tags").get("models", [])
        return models

    def delete(self, name: str) -> None:
        """Remove a model (DELETE /api/delete)."""
        resp = self._send("DELETE", "/api/delete", json={"model": name})
        if resp.status_code != 200:
            raise self._error(resp, f"deleting {name}")

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        resp = self._send(method, path, **kwargs)
        if resp.status_code != 200:
            raise self._error(resp, f"{method} {path}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise OllamaError(f"Ollama at {self.host} answered {path} with invalid JSON.") from exc
        return data if isinstance(data, dict) else {}

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: Exception) -> OllamaError:
        return OllamaError(
            f"cannot reach Ollama at {self.host} ({type(exc).__name__}).",
            "Start it with `ollama serve` (or set --ollama-host / llm.ollama_host), or build with --register none.")

    def _error(self, resp: httpx.Response, doing: str) -> OllamaError:
        try:
            detail = resp.json().get("error", resp.text)
        except ValueError:
            detail = resp.text
        return OllamaError(f"Ollama at {self.host} failed {doing}: HTTP {resp.status_code} {detail}".strip())


def _parse_line(line: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError:
        return {"error": f"unreadable progress line {line[:80]!r}"}
    return data if isinstance(data, dict) else {}


def _normalize_host(host: str) -> str:
    # OLLAMA_HOST is often given as "host:port" without a scheme.
    host = host.strip().rstrip("/")
    return host if "://" in host else f"http://{host}"
