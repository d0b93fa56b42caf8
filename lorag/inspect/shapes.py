"""Tensor shapes of a base model without loading it: from its weight headers, or implied by config.json.

Usage::

    shapes = base_tensor_shapes(Path("models/Qwen2.5-7B"))   # {"model.embed_tokens.weight": [152064, 3584], ...}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorag.inspect.files import read_json, safetensors_shapes, text_config


def base_tensor_shapes(model_dir: Path) -> dict[str, list[int]]:
    """HF-named tensor shapes of a model directory: its safetensors headers, or config.json's for quantized bases."""
    cfg = text_config(read_json(model_dir / "config.json"))
    shapes, _dtypes = safetensors_shapes(model_dir)
    return config_tensor_shapes(cfg) if cfg.get("quantization_config") or not shapes else shapes


def config_tensor_shapes(cfg: dict[str, Any]) -> dict[str, list[int]]:
    """HF tensor names and shapes implied by a decoder-only config.json (Llama/Qwen2/Mistral/Gemma families)."""
    h, inter, vocab = int(cfg["hidden_size"]), int(cfg.get("intermediate_size", 4 * cfg["hidden_size"])), int(
        cfg["vocab_size"])
    heads = int(cfg["num_attention_heads"])
    kv = int(cfg.get("num_key_value_heads") or heads)
    hd = int(cfg.get("head_dim") or h // heads)
    mtype = str(cfg.get("model_type", ""))
    bias = bool(cfg.get("attention_bias", mtype.startswith("qwen2")))
    s: dict[str, list[int]] = {"model.embed_tokens.weight": [vocab, h], "model.norm.weight": [h]}
    if not cfg.get("tie_word_embeddings", False):
        s["lm_head.weight"] = [vocab, h]
    for i in range(int(cfg["num_hidden_layers"])):
        p = f"model.layers.{i}."
        s |= {p + "input_layernorm.weight": [h], p + "post_attention_layernorm.weight": [h],
              p + "self_attn.q_proj.weight": [heads * hd, h], p + "self_attn.k_proj.weight": [kv * hd, h],
              p + "self_attn.v_proj.weight": [kv * hd, h], p + "self_attn.o_proj.weight": [h, heads * hd],
              p + "mlp.gate_proj.weight": [inter, h], p + "mlp.up_proj.weight": [inter, h],
              p + "mlp.down_proj.weight": [h, inter]}
        if bias:
            s |= {p + "self_attn.q_proj.bias": [heads * hd], p + "self_attn.k_proj.bias": [kv * hd],
                  p + "self_attn.v_proj.bias": [kv * hd]}
        if mtype.startswith(("gemma3", "qwen3")):
            s |= {p + "self_attn.q_norm.weight": [hd], p + "self_attn.k_norm.weight": [hd]}
        if mtype.startswith(("gemma2", "gemma3")):
            s |= {p + "pre_feedforward_layernorm.weight": [h], p + "post_feedforward_layernorm.weight": [h]}
    return s
