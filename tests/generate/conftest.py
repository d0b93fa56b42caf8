"""GGUF fixtures made from the tiny models with llama.cpp's reference converters (tiny_qwen2_gguf: tests/helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.generate.gguf_helpers import convert_lora


@pytest.fixture(scope="session")
def tiny_qwen2_lora_gguf(tiny_qwen2: Path, tiny_qwen2_adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_qwen2_adapter as a GGUF LoRA."""
    return convert_lora(tiny_qwen2_adapter, tiny_qwen2, tmp_path_factory.mktemp("gguf") / "tiny-qwen2-lora.gguf")
