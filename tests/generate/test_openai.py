"""The OpenAI-compatible backend against llama-cpp-python's real server on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lorag.errors import GenerationError
from lorag.generate.base import GenerationRequest, Generator, complete
from lorag.generate.openai import OpenAIGenerator

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tiny_qwen2_gguf: Path) -> Iterator[str]:
    """`python -m llama_cpp.server` with the tiny Qwen2 GGUF; yields its /v1 base URL."""
    pytest.importorskip("sse_starlette", reason="llama_cpp.server needs sse-starlette and starlette-context")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(tiny_qwen2_gguf),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "2",
                             "--model_alias", "tiny"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            try:
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_chat_streams(server: str) -> None:
    gen = OpenAIGenerator("tiny", server)
    assert isinstance(gen, Generator) and gen.name == "openai:tiny"
    request = GenerationRequest(messages=[{"role": "user", "content": "こんにちは"}], max_tokens=8, temperature=0.0,
                                seed=1)
    pieces = list(gen.stream(request))
    assert pieces and gen.usage.completion_tokens > 0
    assert complete(gen, request) == "".join(pieces)


def test_completion_streams(server: str) -> None:
    gen = OpenAIGenerator("tiny", server)
    text = complete(gen, GenerationRequest(prompt="質問：", max_tokens=6, temperature=0.0))
    assert isinstance(text, str) and gen.usage.completion_tokens > 0


def test_no_server_is_a_clear_error() -> None:
    gen = OpenAIGenerator("tiny", f"http://127.0.0.1:{_free_port()}/v1")
    with pytest.raises(GenerationError, match="no OpenAI-compatible server answers"):
        list(gen.stream(GenerationRequest(prompt="x")))


def test_empty_base_url() -> None:
    with pytest.raises(GenerationError, match="openai_base_url is empty"):
        OpenAIGenerator("tiny", "")
