"""Architectures the fast path streams natively: HF tensor names → GGUF names, and the converter's permutes."""

from __future__ import annotations

import re
from typing import Any

# HF architecture (config.json "architectures") → llama.cpp arch name.
NATIVE: dict[str, str] = {
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Gemma3ForCausalLM": "gemma3",
}
_LAYER_WEIGHTS = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_LAYER_RE = re.compile(r"model\.layers\.(\d+)\.(.+)\.weight")


def supports(architecture: str) -> bool:
    """True for the HF architecture names (or llama.cpp arch names) streamed natively."""
    return architecture in NATIVE or architecture in NATIVE.values()


def gguf_name(hf_name: str) -> str | None:
    """The GGUF name of a streamed 2-D weight, or None for tensors the converter handles itself."""
    if hf_name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf_name == "lm_head.weight":
        return "output.weight"
    match = _LAYER_RE.fullmatch(hf_name)
    if match and match.group(2) in _LAYER_WEIGHTS:
        return f"blk.{match.group(1)}.{_LAYER_WEIGHTS[match.group(2)]}.weight"
    return None


def rotary_permute(weight: Any, hf_name: str, arch: str, hparams: dict[str, Any]) -> Any:
    """Apply llama.cpp's q/k row permutation for llama (the converter's LlamaModel.permute); identity otherwise."""
    if arch != "llama":
        return weight
    n_head = int(hparams["num_attention_heads"])
    if hf_name.endswith("self_attn.q_proj.weight"):
        heads = n_head
    elif hf_name.endswith("self_attn.k_proj.weight"):
        heads = int(hparams.get("num_key_value_heads") or n_head)
    else:
        return weight
    rows = weight.shape[0]
    return (weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def model_type_is_70b(arch: str, n_layer: int, hparams: dict[str, Any]) -> bool:
    """llama.cpp's LLM_TYPE_70B test for the architectures we stream (it changes Q4_K_M's attn_v type)."""
    if n_layer != 80:
        return False
    if arch == "llama":
        return int(hparams["num_attention_heads"]) != int(hparams.get("num_key_value_heads") or 0)
    return arch == "qwen2"
