"""The streaming merge: same result as PEFT, shard by shard, with embeddings, modules_to_save and rsLoRA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorag.build.merge import LoraPair, load_adapter_weights, merge_into, merge_model, module_scale
from lorag.build.progress import StageProgress
from lorag.errors import BuildError
from lorag.inspect.lora import LoraSettings


def _merge(base: Path, adapter: Path, out: Path) -> list[str]:
    from lorag.build.workdir import stage_model_dir

    out.mkdir()
    changed = merge_model(base, load_adapter_weights(adapter), out, StageProgress(None, "merge"))
    stage_model_dir(base, adapter, out)
    return changed


def test_merge_math_fan_in_fan_out_and_rslora() -> None:
    import torch

    a, b = torch.randn(4, 6), torch.randn(3, 4)
    w = torch.zeros(3, 6, dtype=torch.bfloat16)
    settings = LoraSettings.from_config({"r": 4, "lora_alpha": 8})
    merged = merge_into(w, LoraPair("m", a, b), settings)
    assert merged.dtype == torch.bfloat16
    assert torch.equal(merged, ((b @ a) * 2.0).to(torch.bfloat16))
    assert module_scale("x.q_proj", LoraSettings.from_config({"r": 4, "lora_alpha": 8, "use_rslora": True})) == (4, 4.0)
    patterned = LoraSettings.from_config({"r": 4, "lora_alpha": 8, "rank_pattern": {"q_proj": 2}})
    assert module_scale("layers.0.q_proj", patterned) == (2, 4.0)
    wt = torch.zeros(6, 3)
    transposed = LoraSettings.from_config({"r": 4, "lora_alpha": 8, "fan_in_fan_out": True})
    assert torch.equal(merge_into(wt, LoraPair("m", a, b), transposed), (b @ a).T * 2.0)
    with pytest.raises(BuildError, match="shape mismatch"):
        merge_into(torch.zeros(5, 6), LoraPair("m", a, b), settings)


@pytest.mark.slow
def test_embedding_lora_and_modules_to_save_match_peft(tmp_path: Path) -> None:
    """embed_tokens LoRA + a trained lm_head on a tied base: merged logits equal PEFT's unmerged forward."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    from tests.helpers.tiny import make_tiny_adapter, make_tiny_model

    base = make_tiny_model(tmp_path / "base", dtype="float32", seed=7)
    adapter = make_tiny_adapter(base, tmp_path / "ad", targets=("q_proj", "v_proj", "embed_tokens"),
                                modules_to_save=["lm_head"])
    weights_file = adapter / "adapter_model.safetensors"
    tensors = load_file(weights_file)
    head = next(k for k in tensors if k.endswith("lm_head.weight"))
    tensors[head] = tensors[head] + 0.02 * torch.randn(tensors[head].shape, generator=torch.Generator().manual_seed(2))
    save_file(tensors, weights_file)

    changed = _merge(base, adapter, tmp_path / "merged")
    assert "lm_head.weight" in changed and "model.embed_tokens.weight" in changed
    assert json.loads((tmp_path / "merged" / "config.json").read_text())["tie_word_embeddings"] is False

    ids = torch.tensor([[9707, 11, 1879, 101059, 15322, 102]])
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32)
    with torch.no_grad():
        expected, got = peft_model(ids).logits, merged(ids).logits
    assert torch.allclose(expected, got, atol=1e-4)


@pytest.mark.slow
def test_sharded_base_merges_shard_by_shard(tiny_qwen2: Path, tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    sharded = tmp_path / "sharded"
    AutoModelForCausalLM.from_pretrained(tiny_qwen2).save_pretrained(sharded, max_shard_size="30MB")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (sharded / name).write_bytes((tiny_qwen2 / name).read_bytes())
    shards = sorted(p.name for p in sharded.glob("*.safetensors"))
    assert len(shards) > 1
    events: list[dict] = []
    (tmp_path / "a").mkdir()
    weights = load_adapter_weights(tiny_qwen2_adapter)
    merge_model(sharded, weights, tmp_path / "a", StageProgress(events.append, "merge"))
    (tmp_path / "b").mkdir()
    merge_model(tiny_qwen2, load_adapter_weights(tiny_qwen2_adapter), tmp_path / "b", StageProgress(None, "merge"))
    assert sorted(p.name for p in (tmp_path / "a").glob("*.safetensors")) == shards
    index = json.loads((tmp_path / "a" / "model.safetensors.index.json").read_text())
    merged_a = {k: v for s in shards for k, v in load_file(tmp_path / "a" / s).items()}
    merged_b = load_file(tmp_path / "b" / "model.safetensors")
    assert set(index["weight_map"]) == set(merged_a) == set(merged_b)
    assert all(torch.equal(merged_a[k], merged_b[k]) for k in merged_b)
    assert [e["bytes_done"] for e in events] == sorted(e["bytes_done"] for e in events)
    assert events[-1]["percent"] == 100.0


def test_adapter_chat_template_wins(tiny_qwen2: Path, tmp_path: Path) -> None:
    from lorag.build.workdir import chat_template_of, stage_model_dir

    adapter = tmp_path / "ad"
    adapter.mkdir()
    (adapter / "chat_template.jinja").write_text("{{ messages[0]['content'] }}<|im_end|>", encoding="utf-8")
    template = stage_model_dir(tiny_qwen2, adapter, tmp_path / "out")
    assert template == "{{ messages[0]['content'] }}<|im_end|>"
    assert chat_template_of(tmp_path / "out") == template
    assert stage_model_dir(tiny_qwen2, tmp_path, tmp_path / "out2") == chat_template_of(tiny_qwen2)
