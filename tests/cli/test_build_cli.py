"""`lorag model build` and scripts/quantize_finetuned_for_ollama.py: thin wrappers over run_build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_cli_json(qwen2_q4, build_config: Path, tiny_qwen2: Path, tiny_qwen2_adapter: Path,
                  capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from lorag.cli import main

    monkeypatch.setenv("LORAG_CONFIG", str(build_config))
    with pytest.raises(SystemExit) as exit_info:
        main(["model", "build", "--lora-path", str(tiny_qwen2_adapter), "--base", str(tiny_qwen2),
              "--name", "tiny-qwen2", "--json"])
    assert exit_info.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"gguf", "modelfile", "quantization", "size_bytes", "stages", "fidelity", "registered_as",
                        "config_updated", "cache_hit"}
    assert out["gguf"] == str(qwen2_q4.gguf) and out["cache_hit"] is True and out["quantization"] == "Q4_K_M"
    assert out["registered_as"] is None and out["config_updated"] is False
    assert set(out["fidelity"]) >= {"kl_mean", "top1"}


def test_script_registers_and_updates_config_by_default(qwen2_q4, build_config: Path, tiny_qwen2: Path,
                                                         tiny_qwen2_adapter: Path, fake_ollama: FakeOllama) -> None:
    from lorag.config import load_config

    proc = subprocess.run(
        [sys.executable, "scripts/quantize_finetuned_for_ollama.py", "--lora-path", str(tiny_qwen2_adapter),
         "--base", str(tiny_qwen2), "--name", "tiny-qwen2", "--quantization", "Q4_K_M",
         "--ollama-host", fake_ollama.url, "--config", str(build_config), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["registered_as"] == "tiny-qwen2:q4_k_m" and out["config_updated"] is True
    settings = load_config(build_config).settings
    assert (settings.llm.backend, settings.llm.model) == ("ollama", "tiny-qwen2:q4_k_m")
    assert "tiny-qwen2:q4_k_m" in fake_ollama.state.models


def test_script_error_exit_code(build_config: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "scripts/quantize_finetuned_for_ollama.py", "--lora-path", str(tmp_path / "missing"),
         "--config", str(build_config)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: LoRA adapter directory") and "Traceback" not in proc.stderr
