"""Registering with Ollama over its HTTP API (the fake in tests/helpers, or a real one with OLLAMA_HOST)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest

from lorag.build.progress import StageProgress
from lorag.errors import OllamaError
from lorag.registry.modelfile import model_spec
from lorag.registry.ollama import OllamaClient
from lorag.registry.register import register_model
from tests.helpers.fake_ollama import FakeOllama, free_port_url


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_blobs_version_tags_delete(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"weights" * 1000)
    digest = _digest(blob.read_bytes())
    with OllamaClient(fake_ollama.url) as client:
        assert client.version() == "0.12.6"
        assert client.has_blob(digest) is False
        client.push_blob(blob, digest)
        assert client.has_blob(digest) is True
        with pytest.raises(OllamaError, match="digest mismatch"):
            client.push_blob(blob, _digest(b"other"))
        assert client.tags() == []
        with pytest.raises(OllamaError, match="HTTP 404"):
            client.delete("missing:latest")


def test_unreachable_says_how_to_start() -> None:
    with OllamaClient(free_port_url(), timeout=2) as client, pytest.raises(OllamaError) as info:
        client.version()
    assert "cannot reach Ollama at http://127.0.0.1:" in str(info.value)
    assert "ollama serve" in str(info.value)


def test_host_without_scheme() -> None:
    assert OllamaClient("localhost:11434").host == "http://localhost:11434"


@pytest.mark.slow
def test_register_is_idempotent_and_chat_works(qwen2_q4, fake_ollama: FakeOllama) -> None:
    spec = model_spec("<|im_start|>{{ m }}<|im_end|>", 2048, 0.2, 0.95)
    with OllamaClient(fake_ollama.url) as client:
        first = register_model(client, "tiny:q4_k_m", qwen2_q4.gguf, spec, StageProgress(None, "register"))
        second = register_model(client, "tiny:q4_k_m", qwen2_q4.gguf, spec, StageProgress(None, "register"))
        assert first.uploaded == ["model.gguf"] and second.uploaded == []
        assert len(fake_ollama.state.uploads()) == 1
        shown = client.show("tiny:q4_k_m")
        assert shown["details"]["family"] == "qwen2"
        assert 'stop "<|im_end|>"' in shown["parameters"] and "num_ctx 2048" in shown["parameters"]
        assert shown["template"] == spec.template
        assert [m["name"] for m in client.tags()] == ["tiny:q4_k_m"]
    chat = {"model": "tiny:q4_k_m", "messages": [{"role": "user", "content": "こんにちは"}],
            "options": {"num_predict": 4}}
    with httpx.stream("POST", fake_ollama.url + "/api/chat", json=chat, timeout=60) as resp:
        lines = [json.loads(line) for line in resp.iter_lines() if line]
    assert lines[-1]["done"] is True and all(not x["done"] for x in lines[:-1])
    single = httpx.post(fake_ollama.url + "/api/chat", json={**chat, "stream": False}, timeout=60).json()
    assert single["message"]["content"] == "".join(x["message"]["content"] for x in lines)
    with OllamaClient(fake_ollama.url) as client:
        client.delete("tiny:q4_k_m")
        assert client.tags() == []


@pytest.mark.slow
def test_build_registers_and_switches_config(qwen2_q4, tiny_qwen2: Path, tiny_qwen2_adapter: Path,
                                             build_config: Path, fake_ollama: FakeOllama) -> None:
    from lorag.build.pipeline import BuildRequest, run_build
    from lorag.config import load_config

    text_before = build_config.read_text(encoding="utf-8")
    result = run_build(load_config(build_config), BuildRequest(
        lora_path=tiny_qwen2_adapter, base=tiny_qwen2, name="tiny-qwen2", register="ollama",
        ollama_host=fake_ollama.url, update_config=True))
    assert result.cache_hit and result.registered_as == "tiny-qwen2:q4_k_m" and result.config_updated
    settings = load_config(build_config).settings
    assert (settings.llm.backend, settings.llm.model) == ("ollama", "tiny-qwen2:q4_k_m")
    text = build_config.read_text(encoding="utf-8")
    assert "# lorag configuration" in text  # comments kept
    assert (build_config.parent / "lorag.yaml.bak").read_text(encoding="utf-8") == text_before
    create = fake_ollama.state.models["tiny-qwen2:q4_k_m"]
    assert create["parameters"]["stop"] == ["<|im_end|>", "<|im_start|>"]
    assert create["files"]["model.gguf"] == "sha256:" + hashlib.sha256(result.gguf.read_bytes()).hexdigest()


@pytest.mark.slow
def test_error_line_after_200_registers_nothing(qwen2_q4, tiny_qwen2: Path, tiny_qwen2_adapter: Path,
                                                build_config: Path, fake_ollama: FakeOllama) -> None:
    from lorag.build.pipeline import BuildRequest, run_build
    from lorag.config import load_config

    fake_ollama.state.create_error_after_200 = "unsupported model architecture"
    before = build_config.read_bytes()
    with pytest.raises(OllamaError, match="could not create tiny-qwen2:q4_k_m: unsupported model architecture"):
        run_build(load_config(build_config), BuildRequest(
            lora_path=tiny_qwen2_adapter, base=tiny_qwen2, name="tiny-qwen2", register="ollama",
            ollama_host=fake_ollama.url, update_config=True))
    assert build_config.read_bytes() == before
    assert fake_ollama.state.models == {}


def _live_host() -> str | None:
    host = os.environ.get("OLLAMA_HOST")
    if not host:
        return None
    try:
        with OllamaClient(host, timeout=2) as client:
            client.version()
    except OllamaError:
        return None
    return host


@pytest.mark.ollama_live
@pytest.mark.slow
def test_live_ollama_register_show_delete(qwen2_q4) -> None:
    host = _live_host()
    if host is None:
        pytest.skip("no Ollama answering at $OLLAMA_HOST")
    spec = model_spec("<|im_start|>{{ m }}<|im_end|>", 2048, 0.2, 0.95)
    name = "lorag-test-tiny:q4_k_m"
    with OllamaClient(host) as client:
        register_model(client, name, qwen2_q4.gguf, spec, StageProgress(None, "register"))
        shown = client.show(name)
        assert "<|im_end|>" in shown.get("parameters", "")
        assert name in [m["name"] for m in client.tags()]
        client.delete(name)


def test_go_template_only_for_servers_before_0_30() -> None:
    from lorag.registry.register import create_payload, renders_jinja

    spec = model_spec("<|im_start|>{{ m }}<|im_end|>", 2048, 0.2, 0.95)
    refs = {"model.gguf": "sha256:" + "0" * 64, "adapter.gguf": "sha256:" + "1" * 64}
    old = create_payload("m:q4", refs, spec, "0.12.6")
    new = create_payload("m:q4", refs, spec, "0.30.1")
    assert old["template"] == spec.template and "template" not in new
    assert old["adapters"] == {"adapter.gguf": "sha256:" + "1" * 64}
    assert new["parameters"]["stop"] == ["<|im_end|>", "<|im_start|>"]
    assert (renders_jinja("0.29.9"), renders_jinja("0.30.0"), renders_jinja("1.2"), renders_jinja("")) == (
        False, True, True, False)


def test_a_server_that_never_answers_times_out(fake_ollama: FakeOllama) -> None:
    fake_ollama.state.hang_s = 5.0
    with OllamaClient(fake_ollama.url, timeout=0.5) as client, pytest.raises(OllamaError) as info:
        client.version()
    assert str(info.value) == (f"Ollama at {fake_ollama.url} accepted the connection but did not answer GET "
                               "/api/version in time (ReadTimeout). Check that the server is healthy (restart it), "
                               "then retry.")


def test_a_cut_off_upload_is_retried(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"weights" * 100_000)
    fake_ollama.state.cut_uploads = 2
    with OllamaClient(fake_ollama.url) as client:
        client.push_blob(blob, _digest(blob.read_bytes()))
        assert client.has_blob(_digest(blob.read_bytes())) is True
    assert len(fake_ollama.state.uploads()) == 3


def test_an_upload_cut_off_every_time_says_ollama_answered(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    blob = tmp_path / "model.gguf"
    blob.write_bytes(b"weights" * 100_000)
    fake_ollama.state.cut_uploads = 3
    with OllamaClient(fake_ollama.url) as client, pytest.raises(OllamaError) as info:
        client.push_blob(blob, _digest(blob.read_bytes()))
    message = str(info.value)
    assert message.startswith(f"Ollama at {fake_ollama.url} answered, but the upload of model.gguf was cut off 3 "
                              "times (")
    assert "cannot reach" not in message and "ollama serve" not in message


@pytest.mark.parametrize("body", [["not", "an", "object"], "just text", {"error": ["nested"]}, 42])
def test_an_error_body_that_is_not_an_object(fake_ollama: FakeOllama, body: object) -> None:
    fake_ollama.state.error_body = body
    with OllamaClient(fake_ollama.url) as client, pytest.raises(OllamaError) as info:
        client.version()
    assert str(info.value) == f"Ollama at {fake_ollama.url} failed GET /api/version: HTTP 500 {json.dumps(body)}"
