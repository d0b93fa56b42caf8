"""The replaced system's rag_config.yaml keys are read with their real meaning and a warning for each."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lorag.config import load_config
from lorag.legacy import translate_legacy

OLD_CONFIG = """\
# rag_config.yaml of the system lorag replaces
llm:
  use_finetuned: true
  finetuned_model_path: outputs/lora_X
  use_ollama_fallback: true
  ollama_model: llama3.2:3b
  load_in_8bit: true
  ollama_base_url: http://gpu-box:11434
retrieval:
  top_k: 4
"""


def test_old_rag_config_is_read_with_a_warning_per_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "rag_config.yaml"
    path.write_text(OLD_CONFIG, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="lorag.config"):
        llm = load_config(path).settings.llm
    assert llm.model == "outputs/lora_X"
    assert llm.quantization == "4bit"  # the old load_in_8bit really loaded 4-bit weights
    assert llm.fallback == "llama3.2:3b"
    assert llm.ollama_host == "http://gpu-box:11434"
    assert llm.backend == "auto"
    warned = {r.getMessage().split()[2] for r in caplog.records if "deprecated" in r.getMessage()}
    assert warned == {"llm.load_in_8bit", "llm.use_finetuned", "llm.use_ollama_fallback", "llm.ollama_base_url"}
    assert any("actually loaded 4-bit" in r.getMessage() for r in caplog.records)


def test_load_in_8bit_false_means_no_quantization() -> None:
    assert translate_legacy({"llm": {"load_in_8bit": False}})["llm"] == {"quantization": "none"}


def test_new_keys_win_over_old_ones() -> None:
    data = translate_legacy({"llm": {"load_in_8bit": True, "quantization": "8bit"}})
    assert data["llm"]["quantization"] == "8bit"


def test_not_using_the_fine_tune_means_ollama() -> None:
    data = translate_legacy({"llm": {"use_finetuned": False, "ollama_model": "llama3.2:3b",
                                     "use_ollama_fallback": False}})
    assert data["llm"] == {"backend": "ollama", "model": "llama3.2:3b", "fallback": "none"}


def test_no_silent_fallback_when_old_switch_is_off() -> None:
    data = translate_legacy({"llm": {"use_finetuned": True, "lora_path": "out/lora", "use_ollama_fallback": False,
                                     "ollama_model": "llama3.2:3b"}})
    assert data["llm"] == {"model": "out/lora", "fallback": "none"}


def test_new_config_passes_untouched(caplog: pytest.LogCaptureFixture) -> None:
    data = {"llm": {"model": "m", "quantization": "4bit"}}
    with caplog.at_level(logging.WARNING):
        assert translate_legacy(data) == {"llm": {"model": "m", "quantization": "4bit"}}
    assert not caplog.records
