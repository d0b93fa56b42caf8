"""Adapters: reading adapter_config.json, finding the base locally, and refusing adapters that don't fit the base."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lorag.errors import AdapterError
from lorag.inspect.adapter import check_adapter_matches_base, read_adapter, resolve_base


def _copy_with_base(adapter: Path, dest: Path, base_name: str, **extra: object) -> Path:
    shutil.copytree(adapter, dest)
    cfg = json.loads((dest / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = base_name
    cfg.update(extra)
    (dest / "adapter_config.json").write_text(json.dumps(cfg))
    return dest


def test_base_found_through_search_paths(tiny_qwen2: Path, tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_qwen2, models / "Qwen2-Tiny")
    lora = _copy_with_base(tiny_qwen2_adapter, tmp_path / "lora", "someorg/Qwen2-Tiny")
    info = read_adapter(lora, [str(models)])
    assert info.base_path == models / "Qwen2-Tiny"
    assert info.base_name == "someorg/Qwen2-Tiny"


def test_base_found_in_hf_cache_layout(tiny_qwen2: Path, tiny_qwen2_adapter: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--deepseek-ai--DeepSeek-R1-Distill-Qwen-7B"
    shutil.copytree(tiny_qwen2, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    lora = _copy_with_base(tiny_qwen2_adapter, tmp_path / "lora", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")
    assert resolve_base("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", [], lora) == repo / "snapshots" / "abc123"
    # A search path that is itself an HF cache works too.
    monkeypatch.delenv("HF_HUB_CACHE")
    assert read_adapter(lora, [str(cache)]).base_path == repo / "snapshots" / "abc123"


def test_relative_base_resolves_beside_the_adapter(tiny_qwen2: Path, tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_qwen2, tmp_path / "base")
    lora = _copy_with_base(tiny_qwen2_adapter, tmp_path / "lora", "../base")
    assert read_adapter(lora).base_path == lora / "../base"


def test_rslora_scale_embeddings_and_qlora(tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    lora = _copy_with_base(tiny_qwen2_adapter, tmp_path / "lora", "unsloth/qwen2-tiny-bnb-4bit", use_rslora=True,
                           modules_to_save=["lm_head"])
    info = read_adapter(lora)
    assert info.scale == pytest.approx(16 / 8 ** 0.5)
    assert info.touches_embeddings is True
    assert info.qlora is True
    assert info.base_path is None


def test_qlora_from_peft_model_card(tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    lora = _copy_with_base(tiny_qwen2_adapter, tmp_path / "lora", "Qwen/Qwen2-7B")
    (lora / "README.md").write_text("The following `bitsandbytes` quantization config was used during training:\n"
                                    "- load_in_4bit: True\n")
    assert read_adapter(lora).qlora is True


def test_adapter_chat_template_is_read(tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    lora = _copy_with_base(tiny_qwen2_adapter, tmp_path / "lora", "x")
    (lora / "chat_template.jinja").write_text("{{ messages }}")
    assert read_adapter(lora).chat_template == "{{ messages }}"


def test_adapter_for_another_hidden_size_is_refused(tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    from tests.helpers.tiny import make_tiny_model

    wide = make_tiny_model(tmp_path / "wide", hidden_size=512, intermediate_size=1024, num_attention_heads=8,
                           num_key_value_heads=2)
    info = read_adapter(tiny_qwen2_adapter)
    with pytest.raises(AdapterError, match="made for a model of another size"):
        check_adapter_matches_base(info, wide)


def test_adapter_for_another_architecture_is_refused(tiny_qwen2: Path, tiny_llama: Path, tiny_qwen2_adapter: Path,
                                                     tmp_path: Path) -> None:
    # The adapter names its Qwen2 base; planning it on the Llama base must fail even though shapes agree.
    info = read_adapter(tiny_qwen2_adapter)
    with pytest.raises(AdapterError, match=r"trained on a qwen2 model .* but the base .* is llama"):
        check_adapter_matches_base(info, tiny_llama)
    # Modules the base does not have (a GPT-2 style adapter) are refused too.
    from safetensors.numpy import load_file, save_file

    lora = _copy_with_base(tiny_qwen2_adapter, tmp_path / "lora", "gpt2-like")
    tensors = load_file(str(lora / "adapter_model.safetensors"))
    renamed = {k.replace("self_attn.q_proj", "attn.c_attn"): v for k, v in tensors.items()}
    save_file(renamed, str(lora / "adapter_model.safetensors"))
    with pytest.raises(AdapterError, match="does not have: it was made for a different architecture"):
        check_adapter_matches_base(read_adapter(lora), tiny_qwen2)


def test_adapter_with_nan_is_refused(tiny_qwen2: Path, tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    lora = _copy_with_base(tiny_qwen2_adapter, tmp_path / "lora", str(tiny_qwen2))
    tensors = load_file(str(lora / "adapter_model.safetensors"))
    key = sorted(tensors)[0]
    tensors[key] = tensors[key].copy()
    tensors[key].flat[3] = float("nan")
    save_file(tensors, str(lora / "adapter_model.safetensors"))
    with pytest.raises(AdapterError, match="NaN or Inf"):
        check_adapter_matches_base(read_adapter(lora), tiny_qwen2)


def test_adapter_matching_its_base_passes(tiny_qwen2: Path, tiny_qwen2_adapter: Path) -> None:
    check_adapter_matches_base(read_adapter(tiny_qwen2_adapter), tiny_qwen2)
