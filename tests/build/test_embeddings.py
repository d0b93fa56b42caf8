"""An adapter that trains embed_tokens (LoRA) and lm_head (modules_to_save) on a tied base builds in merge mode."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_merge_build_with_embedding_deltas(tiny_qwen2: Path, build_home: Path, tmp_path: Path) -> None:
    from lorag.build.pipeline import BuildRequest, run_build
    from lorag.config import load_config
    from lorag.inspect.gguf_meta import read_gguf
    from tests.helpers.tiny import make_tiny_adapter

    adapter = make_tiny_adapter(tiny_qwen2, tmp_path / "lora-emb", targets=("q_proj", "embed_tokens"),
                                modules_to_save=["lm_head"])
    result = run_build(load_config(build_home / "lorag.yaml"),
                       BuildRequest(lora_path=adapter, base=tiny_qwen2, quantization="F16", name="tiny-emb"))
    names = {t.name for t in read_gguf(result.gguf).tensors}
    assert {"token_embd.weight", "output.weight"} <= names  # untied: the trained lm_head is its own tensor
    assert result.fidelity["kl_mean"] < 1e-4
