"""Build mode "adapter": quantized base GGUF (F16 conversion cached) + GGUF LoRA applied by llama.cpp."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_adapter_mode_build(tiny_qwen2: Path, tiny_qwen2_adapter: Path, build_home: Path) -> None:
    from lorag.build.pipeline import BuildRequest, run_build
    from lorag.config import load_config

    config = load_config(build_home / "lorag.yaml")
    result = run_build(config, BuildRequest(lora_path=tiny_qwen2_adapter, base=tiny_qwen2, name="tiny-qwen2-lora",
                                            mode="adapter"))
    assert result.adapter_gguf is not None and result.adapter_gguf.is_file()
    assert result.gguf.name == "model-Q4_K_M.gguf"
    # llama.cpp's runtime LoRA on the F16 base reproduces PEFT's unmerged forward.
    assert result.fidelity["f16_kl_mean"] < 1e-3
    assert result.fidelity["kl_mean"] < 0.25
    modelfile = result.modelfile.read_text(encoding="utf-8").splitlines()
    assert modelfile[:2] == ["FROM ./model-Q4_K_M.gguf", "ADAPTER ./adapter-F16.gguf"]
    bases = list((config.output_dir / "bases").glob("base-*-F16.gguf"))
    assert len(bases) == 1
    from gguf import GGUFReader

    lora = GGUFReader(str(result.adapter_gguf))
    assert lora.get_field("general.type") is not None
    assert any(t.name.endswith(".lora_a") for t in lora.tensors)
