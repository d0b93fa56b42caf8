"""The Ollama backend against tests/helpers/fake_ollama.py (Ollama's documented /api/chat NDJSON contract)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from lorag.errors import OllamaError
from lorag.generate.base import GenerationRequest, Generator, complete
from lorag.generate.ollama import OllamaGenerator
from lorag.registry.ollama import OllamaClient
from tests.helpers.fake_ollama import FakeOllama, free_port_url

CHAT = [{"role": "user", "content": "こんにちは"}]


def register(server: FakeOllama, gguf: Path, name: str) -> None:
    """Upload the GGUF as a blob and create ``name`` from it, as lorag's registry does."""
    digest = "sha256:" + hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert httpx.post(f"{server.url}/api/blobs/{digest}", content=gguf.read_bytes()).status_code == 201
    reply = httpx.post(f"{server.url}/api/create", json={"model": name, "files": {"model.gguf": digest}}, timeout=30)
    assert reply.status_code == 200 and '"success"' in reply.text


@pytest.mark.slow
def test_chat_streams_through_api_chat(fake_ollama: FakeOllama, tiny_qwen2_gguf: Path) -> None:
    register(fake_ollama, tiny_qwen2_gguf, "tiny:latest")
    gen = OllamaGenerator("tiny:latest", fake_ollama.url)
    assert isinstance(gen, Generator) and gen.supports_chat and gen.name == "ollama:tiny:latest"
    pieces = list(gen.stream(GenerationRequest(messages=CHAT, max_tokens=8, temperature=0.0)))
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert complete(gen, GenerationRequest(messages=CHAT, max_tokens=8, temperature=0.0)) == "".join(pieces)
    assert ("POST", "/api/chat") in fake_ollama.state.requests


@pytest.mark.slow
def test_show_reports_details(fake_ollama: FakeOllama, tiny_qwen2_gguf: Path) -> None:
    register(fake_ollama, tiny_qwen2_gguf, "tiny:latest")
    with OllamaClient(fake_ollama.url) as client:
        assert client.show("tiny:latest")["details"]["family"] == "qwen2"


def test_ollama_not_running() -> None:
    url = free_port_url()
    with pytest.raises(OllamaError, match=f"cannot reach Ollama at {url}"):
        OllamaGenerator("tiny:latest", url)
    gen = OllamaGenerator("tiny:latest", url, check=False)
    with pytest.raises(OllamaError, match="ollama serve"):
        list(gen.stream(GenerationRequest(messages=CHAT)))


def test_unknown_model(fake_ollama: FakeOllama) -> None:
    with pytest.raises(OllamaError, match=r"has no model 'nope:1b'.*ollama pull nope:1b"):
        OllamaGenerator("nope:1b", fake_ollama.url)
    gen = OllamaGenerator("nope:1b", fake_ollama.url, check=False)
    with pytest.raises(OllamaError, match="failed for 'nope:1b'"):
        list(gen.stream(GenerationRequest(messages=CHAT)))


@pytest.mark.slow
def test_inspect_an_ollama_name(fake_ollama: FakeOllama, tiny_qwen2_gguf: Path) -> None:
    from lorag.inspect.hardware import pretend_hardware
    from lorag.inspect.model import inspect_path
    from lorag.inspect.placement import plan_model

    register(fake_ollama, tiny_qwen2_gguf, "tiny:latest")
    info = inspect_path("tiny:latest", ollama_host=fake_ollama.url)
    assert (info.kind, info.architecture, info.path) == ("ollama", "qwen2", "tiny:latest")
    plan = plan_model(info, pretend_hardware(0, 8 * 10**9))
    assert plan.chosen == 0 and plan.reason == "tiny:latest is an Ollama model; Ollama runs it"
