"""LoraSettings: adapter_config.json read once, types checked, PEFT's per-module rank/alpha rule, key names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorag.errors import AdapterError
from lorag.inspect.lora import LoraKey, LoraSettings, parse_lora_key, read_lora_settings


def _adapter(tmp_path: Path, **cfg: object) -> Path:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16, **cfg}))
    return tmp_path


def test_defaults_and_flags(tmp_path: Path) -> None:
    settings = read_lora_settings(_adapter(tmp_path, target_modules=["v_proj", "q_proj"], use_rslora=True,
                                           modules_to_save=["lm_head"], base_model_name_or_path="Qwen/Qwen2-0.5B"))
    assert (settings.r, settings.alpha, settings.use_rslora, settings.use_dora) == (8, 16.0, True, False)
    assert settings.target_modules == ("q_proj", "v_proj") and settings.modules_to_save == ("lm_head",)
    assert settings.base_model == "Qwen/Qwen2-0.5B" and settings.scale == pytest.approx(16 / 8 ** 0.5)
    assert LoraSettings.from_config({}) == LoraSettings(r=8, alpha=8.0)


def test_rank_and_alpha_patterns_follow_peft(tmp_path: Path) -> None:
    settings = read_lora_settings(_adapter(tmp_path, rank_pattern={"q_proj": 4, "layers.1.mlp.down_proj": 2},
                                           alpha_pattern={"q_proj": 32}))
    assert settings.rank_for("model.layers.0.self_attn.q_proj") == 4
    assert settings.scale_for("model.layers.0.self_attn.q_proj") == 8.0
    assert settings.rank_for("model.layers.1.mlp.down_proj") == 2
    assert settings.scale_for("model.layers.1.mlp.down_proj") == 8.0
    assert settings.rank_for("model.layers.11.mlp.down_proj") == 8  # "1." does not match "11." at a dot boundary
    assert settings.scale_for("model.layers.0.self_attn.k_proj") == 2.0


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("r", "eight", "field r must be a positive integer, not str 'eight'."),
    ("r", 0, "field r must be a positive integer, not int 0."),
    ("target_modules", 5, "field target_modules must be a list of module names or one string, not int 5."),
    ("lora_alpha", "16", "field lora_alpha must be a number, not str '16'."),
    ("use_rslora", "yes", "field use_rslora must be true or false, not str 'yes'."),
    ("rank_pattern", {"q_proj": "4"}, "field rank_pattern must be an object of module name → integer, "
                                      "not dict {'q_proj': '4'}."),
])
def test_wrong_types_name_the_field(tmp_path: Path, field: str, value: object, expected: str) -> None:
    path = _adapter(tmp_path, **{field: value})
    with pytest.raises(AdapterError) as info:
        read_lora_settings(path)
    assert info.value.message == f"{path / 'adapter_config.json'}: {expected}"
    assert info.value.hint == "Fix the field, or re-save the adapter with PeftModel.save_pretrained()."


def test_not_lora_and_missing_config(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match=r"has no adapter_config\.json, so it is not a PEFT LoRA adapter"):
        read_lora_settings(tmp_path)
    with pytest.raises(AdapterError, match="is a IA3 adapter; lorag handles LoRA adapters only"):
        read_lora_settings(_adapter(tmp_path, peft_type="IA3"))


def test_key_names() -> None:
    assert parse_lora_key("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight") == LoraKey(
        "model.layers.0.self_attn.q_proj", "A")
    assert parse_lora_key("model.layers.0.mlp.up_proj.lora_B.default.weight") == LoraKey("model.layers.0.mlp.up_proj",
                                                                                          "B")
    embed = parse_lora_key("base_model.model.model.embed_tokens.lora_embedding_A")
    assert embed == LoraKey("model.embed_tokens", "embedding_A") and embed.embedding
    assert parse_lora_key("base_model.model.lm_head.modules_to_save.default.weight") is None


def test_every_route_gives_the_same_error_for_a_broken_config(tmp_path: Path) -> None:
    from lorag.build.fast.lora import load_lora
    from lorag.build.merge import load_adapter_weights
    from lorag.inspect.adapter import read_adapter

    path = _adapter(tmp_path, r="eight")
    messages = set()
    for read in (read_adapter, load_adapter_weights, load_lora):
        with pytest.raises(AdapterError) as info:
            read(path)
        messages.add(info.value.message)
    assert messages == {f"{path / 'adapter_config.json'}: field r must be a positive integer, not str 'eight'."}
