"""Config: defaults, env overrides, comment-keeping atomic updates with a backup, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lorag.config import init_config, load_config, update_config
from lorag.errors import ConfigError


def test_defaults_without_file(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "missing.yaml")
    assert cfg.settings.llm.backend == "auto"
    assert cfg.settings.retrieval.tokenizer == "sudachi"
    assert cfg.store_path == tmp_path / ".lorag" / "lorag.db"


def test_init_refuses_to_overwrite(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="already exists"):
        init_config(config_file)


def test_env_overrides_file(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAG_LLM__BACKEND", "ollama")
    monkeypatch.setenv("LORAG_RETRIEVAL__TOP_K", "9")
    cfg = load_config()
    assert cfg.settings.llm.backend == "ollama"
    assert cfg.settings.retrieval.top_k == 9


def test_update_keeps_comments_and_backup(config_file: Path) -> None:
    before = config_file.read_text(encoding="utf-8")
    cfg = update_config(config_file, {"llm.model": "lorag-ft:q4_k_m", "llm.backend": "ollama"})
    text = config_file.read_text(encoding="utf-8")
    assert cfg.settings.llm.model == "lorag-ft:q4_k_m"
    assert "# optional LoRA adapter (PEFT dir or GGUF LoRA)" in text
    assert 'model: "lorag-ft:q4_k_m"' in text
    assert config_file.with_name("lorag.yaml.bak").read_text(encoding="utf-8") == before


def test_invalid_update_leaves_file_untouched(config_file: Path) -> None:
    before = config_file.read_bytes()
    with pytest.raises(ConfigError, match=r"llm\.backend"):
        update_config(config_file, {"llm.backend": "gpt5"})
    with pytest.raises(ConfigError, match="unknown quantization"):
        update_config(config_file, {"build.quantization": "Q3_X"})
    assert config_file.read_bytes() == before
    assert not list(config_file.parent.glob(".lorag-tmp-*"))


def test_read_only_config_is_refused(config_file: Path) -> None:
    config_file.chmod(0o444)
    before = config_file.read_bytes()
    with pytest.raises(ConfigError, match="read-only"):
        update_config(config_file, {"llm.model": "x"})
    assert config_file.read_bytes() == before


def test_read_only_config_is_refused_as_root(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root can write anything, so simulate the permission check the way a normal user would hit it.
    before = config_file.read_bytes()
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ConfigError, match="read-only; the config was not changed"):
        update_config(config_file, {"llm.model": "x"})
    assert config_file.read_bytes() == before


def test_malformed_yaml_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "lorag.yaml"
    bad.write_text("llm: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_legacy_rag_config_is_mapped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    legacy = tmp_path / "rag_config.yaml"
    legacy.write_text(
        "llm:\n  use_finetuned: true\n  finetuned_model_path: outputs/lora_X\n"
        "  use_ollama_fallback: true\n  ollama_model: llama3.2:3b\n  load_in_8bit: true\n",
        encoding="utf-8",
    )
    cfg = load_config(legacy)
    assert cfg.settings.llm.model == "outputs/lora_X"
    assert cfg.settings.llm.fallback == "llama3.2:3b"
    assert cfg.settings.llm.quantization == "4bit"
    assert "load_in_8bit" in caplog.text
