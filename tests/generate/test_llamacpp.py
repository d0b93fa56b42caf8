"""LlamaCppGenerator with real GGUFs: the bundled Gemma 3 270M (base) and tiny Qwen2 (chat) with a LoRA."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorag.errors import GenerationError
from lorag.generate.base import GenerationRequest, Generator, complete
from lorag.generate.llamacpp import LlamaCppGenerator, bundled_model_path

pytestmark = pytest.mark.slow

PROMPT = "日本の首都は東京です。\n質問：日本の首都はどこですか？\n答え："


@pytest.fixture(scope="module")
def gemma() -> LlamaCppGenerator:
    return LlamaCppGenerator(bundled_model_path(), n_ctx=1024, threads=2)


def test_bundled_model_is_assembled_once() -> None:
    path = bundled_model_path()
    assert path == Path.home() / ".cache" / "lorag" / "models" / "gemma-3-270m-q4_k_m.gguf"
    assert path.read_bytes()[:4] == b"GGUF" and path.stat().st_size > 200_000_000
    mtime = path.stat().st_mtime_ns
    assert bundled_model_path() == path and path.stat().st_mtime_ns == mtime


def test_gemma_is_a_base_model_that_streams_completions(gemma: LlamaCppGenerator) -> None:
    assert isinstance(gemma, Generator)
    assert gemma.supports_chat is False and gemma.name == "gemma-3-270m-q4_k_m.gguf"
    request = GenerationRequest(prompt=PROMPT, max_tokens=24, temperature=0.0, stop=["\n"], seed=1)
    pieces = list(gemma.stream(request))
    assert len(pieces) >= 1 and "\n" not in "".join(pieces)
    assert gemma.usage.completion_tokens == len(pieces) and gemma.usage.prompt_tokens > 10
    assert complete(gemma, request) == "".join(pieces)  # greedy: the same text again


def test_chat_request_to_a_base_model_is_refused(gemma: LlamaCppGenerator) -> None:
    with pytest.raises(GenerationError, match="has no chat template"):
        list(gemma.stream(GenerationRequest(messages=[{"role": "user", "content": "こんにちは"}])))


def test_prompt_over_the_context_is_a_clear_error(gemma: LlamaCppGenerator) -> None:
    with pytest.raises(GenerationError, match=r"Lower retrieval\.top_k or raise llm\.context"):
        list(gemma.stream(GenerationRequest(prompt="東京 " * 2000, max_tokens=8)))


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(GenerationError, match=r"model file .*nope\.gguf does not exist"):
        LlamaCppGenerator(tmp_path / "nope.gguf")
    (tmp_path / "fake.gguf").write_bytes(b"not a gguf file")
    with pytest.raises(GenerationError, match=r"model file .*fake\.gguf is not a GGUF file"):
        LlamaCppGenerator(tmp_path / "fake.gguf")
    with pytest.raises(GenerationError, match=r"LoRA file .*lora\.gguf does not exist"):
        LlamaCppGenerator(bundled_model_path(), lora_path=tmp_path / "lora.gguf")
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(bundled_model_path().read_bytes()[:1_000_000])
    with pytest.raises(GenerationError, match=r"llama\.cpp could not load truncated\.gguf"):
        LlamaCppGenerator(truncated)


def test_chat_model_with_and_without_lora(tiny_qwen2_gguf: Path, tiny_qwen2_lora_gguf: Path) -> None:
    messages = [{"role": "user", "content": "hello"}]
    request = GenerationRequest(messages=messages, max_tokens=8, temperature=0.0, seed=0)
    plain = LlamaCppGenerator(tiny_qwen2_gguf, n_ctx=256, threads=2)
    assert plain.supports_chat is True
    base_text = complete(plain, request)
    assert plain.usage.completion_tokens >= 1 and plain.usage.prompt_tokens > 0
    tuned = LlamaCppGenerator(tiny_qwen2_gguf, lora_path=tiny_qwen2_lora_gguf, n_ctx=256, threads=2)
    assert tuned.name == f"{tiny_qwen2_gguf.name}+{tiny_qwen2_lora_gguf.name}"
    assert complete(tuned, request) != base_text  # the LoRA changes what the model says


def test_lora_for_another_base_is_refused(tiny_qwen2_lora_gguf: Path) -> None:
    with pytest.raises(GenerationError, match=r"could not load .* with LoRA"):
        LlamaCppGenerator(bundled_model_path(), lora_path=tiny_qwen2_lora_gguf, n_ctx=256)
