"""Shared test setup: offline, one config file per test, no user state touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.builds import *  # noqa: F403  (session builds: qwen2_q4, llama_f16, build_config, ...)
from tests.helpers.fake_ollama import fake_ollama  # noqa: F401  (fixture for every test folder)
from tests.helpers.model_dirs import *  # noqa: F403  (session model folders: gemma3_dirs, llama3_style, ...)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("LORAG_IMPORT_PAGES", "0")  # builds record no profile in ~/.cache (test_preload sets its own)


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh default lorag.yaml in a temp dir, selected through $LORAG_CONFIG."""
    from lorag.config import init_config

    path = tmp_path / "lorag.yaml"
    init_config(path)
    monkeypatch.setenv("LORAG_CONFIG", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 model (bf16) with the real Qwen2 tokenizer."""
    from tests.helpers.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-qwen2")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", arch="llama", seed=3)


@pytest.fixture(scope="session")
def tiny_qwen2_adapter(tiny_qwen2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An r=8 LoRA on all linear layers of ``tiny_qwen2``."""
    from tests.helpers.tiny import make_tiny_adapter

    return make_tiny_adapter(tiny_qwen2, tmp_path_factory.mktemp("adapters") / "lora-tiny-qwen2")
