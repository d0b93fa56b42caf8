"""load_generator: inspect → plan → load; adapters go on their base; fallback is loud; PlanError names the command."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lorag.config import load_config, update_config
from lorag.errors import PlanError
from lorag.generate.base import GenerationRequest, complete
from lorag.generate.generator import load_generator
from lorag.inspect.hardware import pretend_hardware
from tests.generate.test_ollama import register
from tests.helpers.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow
GB = 10**9
CPU_16GB = pretend_hardware(0, 16 * GB)
TOO_SMALL = pretend_hardware(0, 2 * 2**30)  # all of it reserved for the OS: nothing fits


def _config(config_file: Path, **llm: object) -> object:
    return update_config(config_file, {f"llm.{k}": v for k, v in llm.items()})


def test_empty_model_is_the_bundled_gemma(config_file: Path) -> None:
    from lorag.generate.llamacpp import LlamaCppGenerator

    gen = load_generator(load_config(config_file))
    assert isinstance(gen, LlamaCppGenerator) and gen.name == "gemma-3-270m-q4_k_m.gguf"


def test_adapter_goes_on_its_base(config_file: Path, tiny_qwen2_adapter: Path,
                                  caplog: pytest.LogCaptureFixture) -> None:
    from lorag.generate.transformers import TransformersGenerator

    config = _config(config_file, model=str(tiny_qwen2_adapter))
    with caplog.at_level(logging.WARNING, logger="lorag.generate.generator"):
        gen = load_generator(config, CPU_16GB)  # type: ignore[arg-type]
    assert isinstance(gen, TransformersGenerator)
    assert gen.adapter_dir == tiny_qwen2_adapter and gen.model_dir.name == "tiny-qwen2"
    assert "PeftModel" in type(gen.model).__name__
    # llama.cpp on a Q4_K_M build would be the better plan on a CPU: the log says how to get it.
    assert any(f"--lora-path {tiny_qwen2_adapter} --quantization Q4_K_M" in r.getMessage() for r in caplog.records)


def test_model_plus_adapter_keys(config_file: Path, tiny_qwen2: Path, tiny_qwen2_adapter: Path) -> None:
    config = _config(config_file, model=str(tiny_qwen2), adapter=str(tiny_qwen2_adapter), backend="transformers")
    gen = load_generator(config, CPU_16GB)  # type: ignore[arg-type]
    assert gen.name == "tiny-qwen2+lora-tiny-qwen2"
    assert complete(gen, GenerationRequest(prompt="質問：", max_tokens=4, temperature=0.0))


def test_gguf_with_gguf_lora_changes_the_output(config_file: Path, tiny_qwen2_gguf: Path,
                                               tiny_qwen2_lora_gguf: Path) -> None:
    from lorag.generate.llamacpp import LlamaCppGenerator

    request = GenerationRequest(prompt="日本の首都は", max_tokens=12, temperature=0.0, seed=0)
    plain = load_generator(_config(config_file, model=str(tiny_qwen2_gguf)), CPU_16GB)  # type: ignore[arg-type]
    tuned = load_generator(_config(config_file, adapter=str(tiny_qwen2_lora_gguf)), CPU_16GB)  # type: ignore[arg-type]
    assert isinstance(tuned, LlamaCppGenerator) and tuned.lora_path == tiny_qwen2_lora_gguf
    assert complete(plain, request) != complete(tuned, request)


def test_nothing_fits_names_the_build_command(config_file: Path, tiny_qwen2_adapter: Path) -> None:
    config = _config(config_file, model=str(tiny_qwen2_adapter))
    with pytest.raises(PlanError) as err:
        load_generator(config, TOO_SMALL)  # type: ignore[arg-type]
    message = str(err.value)
    assert message.startswith("nothing fits: no GPU, 2.1 GB RAM free")
    assert (f"scripts/quantize_finetuned_for_ollama.py --lora-path {tiny_qwen2_adapter} --quantization Q4_K_M"
            in message)
    assert f"lorag model build --lora-path {tiny_qwen2_adapter} --quantization Q4_K_M" in message
    assert "auto_quantize" in message


def test_explicit_backend_that_cannot_fit(config_file: Path, tiny_qwen2_adapter: Path) -> None:
    config = _config(config_file, model=str(tiny_qwen2_adapter), backend="transformers")
    with pytest.raises(PlanError, match=r"llm\.backend: transformers cannot run .*needs .*no GPU"):
        load_generator(config, TOO_SMALL)  # type: ignore[arg-type]


def test_fallback_is_loud(config_file: Path, tiny_qwen2_adapter: Path, tiny_qwen2_gguf: Path,
                          fake_ollama: FakeOllama, caplog: pytest.LogCaptureFixture) -> None:
    from lorag.generate.ollama import OllamaGenerator

    register(fake_ollama, tiny_qwen2_gguf, "generic:3b")
    config = _config(config_file, model=str(tiny_qwen2_adapter), fallback="generic:3b", ollama_host=fake_ollama.url)
    with caplog.at_level(logging.WARNING, logger="lorag.generate.generator"):
        gen = load_generator(config, TOO_SMALL)  # type: ignore[arg-type]
    assert isinstance(gen, OllamaGenerator) and gen.model == "generic:3b"
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert warning.getMessage().startswith("fine-tune needs ")
    assert "no GPU, 2.1 GB RAM free; using Ollama model generic:3b" in warning.getMessage()
    assert "the fine-tune is NOT used" in warning.getMessage()


def test_ollama_name_goes_to_ollama(config_file: Path, tiny_qwen2_gguf: Path, fake_ollama: FakeOllama) -> None:
    register(fake_ollama, tiny_qwen2_gguf, "tiny:latest")
    gen = load_generator(_config(config_file, model="tiny:latest", ollama_host=fake_ollama.url))  # type: ignore[arg-type]
    assert gen.name == "ollama:tiny:latest"
    assert complete(gen, GenerationRequest(messages=[{"role": "user", "content": "こんにちは"}], max_tokens=4))


def test_auto_quantize_builds_and_serves_the_gguf(config_file: Path, tiny_qwen2: Path, tiny_qwen2_adapter: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from lorag.build.auto import build_for_generator
    from lorag.generate.llamacpp import LlamaCppGenerator

    config = _config(config_file, model=str(tiny_qwen2_adapter), backend="llamacpp", auto_quantize=True)
    with caplog.at_level(logging.WARNING, logger="lorag.generate.generator"):
        gen = load_generator(config, CPU_16GB, build=build_for_generator)  # type: ignore[arg-type]
    assert isinstance(gen, LlamaCppGenerator)
    assert gen.model_path.suffix == ".gguf" and gen.model_path.is_relative_to(config_file.parent)  # type: ignore[attr-defined]
    assert any("building GGUF Q4_K_M" in r.getMessage() for r in caplog.records)
    assert complete(gen, GenerationRequest(prompt="質問：", max_tokens=4, temperature=0.0)) is not None


def test_gpu_layers_follow_the_plan() -> None:
    from lorag.generate.generator import gpu_layers
    from lorag.inspect.placement import PlanOption

    assert gpu_layers(PlanOption("llamacpp", "Q4_K_M", "gpu", 100, True), 64) == -1
    assert gpu_layers(PlanOption("llamacpp", "Q4_K_M", "offload", 100, True, gpu_bytes=25), 64) == 16
    assert gpu_layers(PlanOption("llamacpp", "Q4_K_M", "cpu", 100, True), 64) == 0
