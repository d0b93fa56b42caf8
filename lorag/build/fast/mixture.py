"""Per-tensor output types, following llama.cpp's llama_tensor_get_type (src/llama-quant.cpp) for dense models."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lorag.build.fast.ggml import BLOCK, GGML_TYPE_NAMES

# llama_ftype → the default ggml type (llama_ftype_get_default_type) and the GGUF general.file_type value.
FTYPES: dict[str, tuple[str, int]] = {
    "F16": ("F16", 1), "Q8_0": ("Q8_0", 7), "Q4_K_S": ("Q4_K", 14), "Q4_K_M": ("Q4_K", 15),
    "Q5_K_M": ("Q5_K", 17), "Q6_K": ("Q6_K", 18),
}
_FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}
_LAYER = re.compile(r"blk\.(\d+)\.")


def _category(name: str) -> str:
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for key, cat in (("attn_qkv.weight", "attn_qkv"), ("attn_kv_b.weight", "attn_kv_b"), ("attn_v.weight", "attn_v"),
                     ("attn_k.weight", "attn_k"), ("attn_q.weight", "attn_q"), ("attn_output.weight", "attn_output"),
                     ("ffn_up", "ffn_up"), ("ffn_gate", "ffn_gate"), ("ffn_down", "ffn_down")):
        if key in name:
            return cat
    return "other"


def _allows_quantization(name: str, n_dims: int) -> bool:
    # The subset of tensor_allows_quantization that can match the dense architectures we stream.
    if n_dims < 2 or not name.endswith("weight") or "_norm.weight" in name:
        return False
    return not any(part in name for part in ("ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj",
                                             "position_embd", "token_types", "ssm_conv1d", "attn_rel_b"))


def _use_more_bits(i_layer: int, n_layers: int) -> bool:
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


@dataclass
class MixturePlanner:
    """Walks tensors in llama-quantize's order and returns each one's type, keeping its layer counters."""

    ftype: str
    n_layer: int
    is_70b: bool = False
    names: list[str] = field(default_factory=list)
    _i_attn_v: int = 0
    _i_ffn_down: int = 0

    def __post_init__(self) -> None:
        cats = [_category(n) for n in self.names]
        self._n_attn_v = sum(c in ("attn_v", "attn_qkv", "attn_kv_b") for c in cats)
        self._tied = "output" not in cats

    def choose(self, name: str, shape: tuple[int, ...], current: str) -> str:
        """Output type for tensor ``name`` (numpy-order ``shape``) stored as ``current`` in the F16 GGUF."""
        if not _allows_quantization(name, len(shape)):
            return current
        default = FTYPES[self.ftype][0]
        new = default
        if default in BLOCK and BLOCK[default][0] > 1:  # ggml_is_quantized(default)
            new = self._mixture(name, shape, default)
            new = _fallback(shape[-1], new)
        return new

    def _mixture(self, name: str, shape: tuple[int, ...], new: str) -> str:
        cat, ftype = _category(name), self.ftype
        if cat == "output" or (self._tied and cat == "token_embd"):
            if shape[-1] % BLOCK[new][0] != 0:
                return "Q8_0"
            return new if new == "Q8_0" else "Q6_K"
        if cat == "token_embd":
            return new
        if cat in ("attn_v", "attn_qkv", "attn_kv_b"):
            if ftype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(self._i_attn_v, self._n_attn_v):
                new = "Q6_K"
            elif ftype == "Q4_K_S" and self._i_attn_v < 4:
                new = "Q5_K"
            if self.is_70b and new in ("Q3_K", "Q4_K"):
                new = "Q5_K"
            self._i_attn_v += 1
            return new
        if cat == "ffn_down":
            i_layer, n_layer = self._i_ffn_down, self.n_layer
            if ftype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i_layer, n_layer):
                new = "Q6_K"
            elif ftype == "Q4_K_S" and i_layer < n_layer // 8:
                new = "Q5_K"
            self._i_ffn_down += 1
            return new
        return new


def _fallback(ncols: int, new: str) -> str:
    # tensor_type_fallback: rows that are not a whole number of blocks demote to a 32-block type, then F16.
    block = BLOCK[new][0]
    if ncols % block == 0:
        return new
    new = _FALLBACK.get(new, new)
    return new if ncols % BLOCK[new][0] == 0 else "F16"


def quantize_order(names: list[str]) -> list[str]:
    """llama-quantize's tensor order: by layer number (non-layer tensors first), then by name."""
    def key(name: str) -> tuple[int, str]:
        match = _LAYER.match(name)
        return (int(match.group(1)) if match else -1, name)
    return sorted(names, key=key)


def type_name(ggml_type: int) -> str:
    """ggml type number → name, for the types a converter writes."""
    return GGML_TYPE_NAMES[ggml_type]
