"""A stand-in for Ollama's documented HTTP API (no Ollama binary exists here), served on loopback in a thread.

Covers what lorag uses: /api/version, /api/blobs (HEAD/POST with the digest check), /api/create (NDJSON
progress, optional error line after a 200), /api/show, /api/tags, /api/delete, and /api/chat (streaming and
not) answered by llama-cpp-python from the registered GGUF.

Knobs on ``state`` make it misbehave the way broken servers and networks do: ``hang_s`` (accept, then say
nothing), ``cut_uploads`` (close the connection half-way through that many blob uploads) and ``error_body``
(answer every request with HTTP 500 and this JSON body, which need not be an object).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

_DIGEST = re.compile(r"^/api/blobs/(sha256:[0-9a-f]{64})$")


@dataclass
class FakeOllamaState:
    """What the fake server holds, plus knobs tests turn to provoke errors."""

    blob_dir: Path
    version: str = "0.12.6"
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    create_error_after_200: str | None = None  # send this as an {"error"} line after progress lines
    hang_s: float = 0.0  # wait this long before reading any request (an Ollama that accepts and never answers)
    cut_uploads: int = 0  # drop the connection half-way through this many blob uploads
    error_body: Any = None  # when set, every request gets HTTP 500 with this JSON body
    llms: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / digest.replace(":", "-")

    def uploads(self) -> list[str]:
        """Paths of every blob POST received (to check nothing is uploaded twice)."""
        return [p for m, p in self.requests if m == "POST" and p.startswith("/api/blobs/")]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: FakeOllamaState

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    # --- plumbing -------------------------------------------------------------------------------------------
    def _record(self) -> None:
        with self.state.lock:
            self.state.requests.append((self.command, self.path))
        if self.state.hang_s:
            time.sleep(self.state.hang_s)

    def _faulty(self) -> bool:
        """Answer with the configured error body instead of the route, when one is set."""
        if self.state.error_body is None:
            return False
        self._send(500, self.state.error_body)
        return True

    def _json_body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _send(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(self, lines: Iterator[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in lines:
            chunk = (json.dumps(line, ensure_ascii=False) + "\n").encode()
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    # --- routes ---------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._record()
        if self._faulty():
            return None
        if self.path == "/api/version":
            return self._send(200, {"version": self.state.version})
        if self.path == "/api/tags":
            return self._send(200, {"models": [_tag(n, m) for n, m in sorted(self.state.models.items())]})
        self._send(404, {"error": "not found"})

    def do_HEAD(self) -> None:
        self._record()
        match = _DIGEST.match(self.path)
        if not match:
            return self._send(400)
        self._send(200 if self.state.blob_path(match[1]).is_file() else 404)

    def do_DELETE(self) -> None:
        self._record()
        name = self._json_body().get("model", "")
        if self.path != "/api/delete" or name not in self.state.models:
            return self._send(404, {"error": f"model '{name}' not found"})
        self.state.models.pop(name)
        self.state.llms.pop(name, None)
        self._send(200)

    def do_POST(self) -> None:
        self._record()
        if self._faulty():
            return None
        match = _DIGEST.match(self.path)
        if match:
            return self._receive_blob(match[1])
        routes = {"/api/create": self._create, "/api/show": self._show, "/api/chat": self._chat}
        route = routes.get(self.path)
        if route is None:
            return self._send(404, {"error": "not found"})
        route(self._json_body())

    def _receive_blob(self, digest: str) -> None:
        length = self.headers.get("Content-Length")
        if length is None:
            return self._send(411, {"error": "length required"})
        remaining, sha = int(length), hashlib.sha256()
        with self.state.lock:
            cut, self.state.cut_uploads = self.state.cut_uploads > 0, max(0, self.state.cut_uploads - 1)
        if cut:  # read half the body, then vanish without an answer
            self.rfile.read(max(1, remaining // 2))
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        tmp = self.state.blob_dir / f".upload-{threading.get_ident()}"
        with open(tmp, "wb") as fh:
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
                sha.update(chunk)
                fh.write(chunk)
        if "sha256:" + sha.hexdigest() != digest:
            tmp.unlink()
            return self._send(400, {"error": "digest mismatch"})
        tmp.replace(self.state.blob_path(digest))
        self._send(201)

    def _create(self, body: dict[str, Any]) -> None:
        name = body.get("model")
        files = body.get("files") or {}
        if not name or not files:
            return self._send(400, {"error": "model and files are required"})
        missing = [d for d in [*files.values(), *(body.get("adapters") or {}).values()]
                   if not self.state.blob_path(d).is_file()]

        def lines() -> Iterator[dict[str, Any]]:
            yield {"status": "parsing GGUF"}
            for digest in files.values():
                yield {"status": f"using existing layer {digest}"}
            if self.state.create_error_after_200:
                yield {"error": self.state.create_error_after_200}
                return
            if missing:
                yield {"error": f"blob {missing[0]} not found"}
                return
            self.state.models[name] = {**body, "modified_at": time.strftime("%Y-%m-%dT%H:%M:%SZ")}
            yield {"status": "writing manifest"}
            yield {"status": "success"}

        if body.get("stream", True) is False:
            result = list(lines())[-1]
            return self._send(400 if "error" in result else 200, result)
        self._stream(lines())

    def _show(self, body: dict[str, Any]) -> None:
        name = body.get("model", "")
        model = self.state.models.get(name)
        if model is None:
            return self._send(404, {"error": f"model '{name}' not found"})
        gguf = self.state.blob_path(model["files"]["model.gguf"])
        params = model.get("parameters") or {}
        lines = [f"{k} {json.dumps(v) if isinstance(v, str) else v}" for k, vs in params.items()
                 for v in (vs if isinstance(vs, list) else [vs])]
        self._send(200, {"template": model.get("template", ""), "parameters": "\n".join(lines),
                         "system": model.get("system", ""), "details": _details(gguf),
                         "capabilities": ["completion"], "modified_at": model["modified_at"]})

    def _chat(self, body: dict[str, Any]) -> None:
        name = body.get("model", "")
        if name not in self.state.models:
            return self._send(404, {"error": f"model '{name}' not found"})
        llm = self._llm(name)
        options = body.get("options") or {}
        kwargs = {"max_tokens": int(options.get("num_predict", 32)),
                  "temperature": float(options.get("temperature", 0.0)), "seed": 0}
        messages = body.get("messages") or []
        if body.get("stream", True) is False:
            out = llm.create_chat_completion(messages=messages, **kwargs)
            return self._send(200, {"model": name, "message": {"role": "assistant",
                                    "content": out["choices"][0]["message"]["content"]},
                                    "done": True, "done_reason": "stop"})

        def lines() -> Iterator[dict[str, Any]]:
            for chunk in llm.create_chat_completion(messages=messages, stream=True, **kwargs):
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield {"model": name, "message": {"role": "assistant", "content": piece}, "done": False}
            yield {"model": name, "message": {"role": "assistant", "content": ""}, "done": True,
                   "done_reason": "stop"}

        self._stream(lines())

    def _llm(self, name: str) -> Any:
        from llama_cpp import Llama

        with self.state.lock:
            if name not in self.state.llms:
                model = self.state.models[name]
                adapters = list((model.get("adapters") or {}).values())
                kwargs = {"lora_path": str(self.state.blob_path(adapters[0]))} if adapters else {}
                self.state.llms[name] = Llama(model_path=str(self.state.blob_path(model["files"]["model.gguf"])),
                                              n_ctx=512, verbose=False, seed=0, **kwargs)
            return self.state.llms[name]


def _details(gguf: Path) -> dict[str, Any]:
    from lorag.inspect.gguf_meta import gguf_string

    arch = gguf_string(gguf, "general.architecture") or ""
    return {"format": "gguf", "family": arch, "families": [arch]}


def _tag(name: str, model: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "model": name, "modified_at": model["modified_at"], "digest": model["files"]["model.gguf"]}


class FakeOllama:
    """The running server: ``url`` to point clients at, ``state`` to inspect or provoke errors."""

    def __init__(self, blob_dir: Path) -> None:
        self.state = FakeOllamaState(blob_dir=blob_dir)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-ollama", daemon=True)

    def __enter__(self) -> FakeOllama:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        for llm in self.state.llms.values():
            llm.close()


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    """A fresh fake Ollama server on a random loopback port."""
    with tempfile.TemporaryDirectory(prefix="fake-ollama-") as blobs, FakeOllama(Path(blobs)) as server:
        yield server


def free_port_url() -> str:
    """A loopback URL where nothing listens (for 'Ollama unreachable' tests)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
