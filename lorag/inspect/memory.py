"""Predict memory: weights per precision (bf16, bitsandbytes 8/4-bit, each GGUF type per tensor), KV cache, overhead.

GGUF sizes follow llama.cpp's own choice of type per tensor (src/llama-quant.cpp, `llama_tensor_get_type_impl`):
in Q4_K_M the output (and a tied token_embd) is Q6_K, attn_v and ffn_down are Q6_K in the layers that
`use_more_bits` picks, 1-D tensors stay F32, and a tensor whose row length is not a multiple of the block size
falls back (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0).

Usage::

    info = inspect_path("models/DeepSeek-R1-Distill-Qwen-32B")
    gguf_size_bytes(info, "Q4_K_M")          # ≈ 19.9e9
    total_bytes(info, "Q4_K_M", n_ctx=4096)  # weights + KV cache + compute buffers
"""

from __future__ import annotations

import math
import re

from lorag.inspect.info import ModelInfo

# ggml storage: (values per block, bytes per block)
GGML_BLOCKS = {"F32": (1, 4), "F16": (1, 2), "BF16": (1, 2), "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22),
               "Q5_1": (32, 24), "Q8_0": (32, 34), "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144),
               "Q5_K": (256, 176), "Q6_K": (256, 210)}
_FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0", "Q2_K": "Q4_0", "Q3_K": "Q4_0"}
# file type → (default tensor type, output/tied-embedding type)
GGUF_TYPES = {"F16": ("F16", "F16"), "BF16": ("BF16", "BF16"), "Q8_0": ("Q8_0", "Q8_0"), "Q6_K": ("Q6_K", "Q6_K"),
              "Q5_K_M": ("Q5_K", "Q6_K"), "Q5_K_S": ("Q5_K", "Q6_K"), "Q4_K_M": ("Q4_K", "Q6_K"),
              "Q4_K_S": ("Q4_K", "Q6_K"), "Q4_0": ("Q4_0", "Q6_K")}
PRECISIONS = ("bf16", "fp16", "8bit", "4bit", *GGUF_TYPES)
NF4_BLOCK = 64  # bitsandbytes 4-bit: one fp32 absmax per 64 weights (no double quantization)
GGUF_ALIGN = 32


_GGUF_NAMES = [
    (r"^model\.embed_tokens\.", "token_embd."), (r"^lm_head\.", "output."), (r"^model\.norm\.", "output_norm."),
    (r"\.self_attn\.q_proj\.", ".attn_q."), (r"\.self_attn\.k_proj\.", ".attn_k."),
    (r"\.self_attn\.v_proj\.", ".attn_v."),
    (r"\.self_attn\.o_proj\.", ".attn_output."), (r"\.self_attn\.q_norm\.", ".attn_q_norm."),
    (r"\.self_attn\.k_norm\.", ".attn_k_norm."), (r"\.mlp\.gate_proj\.", ".ffn_gate."),
    (r"\.mlp\.up_proj\.", ".ffn_up."),
    (r"\.mlp\.down_proj\.", ".ffn_down."), (r"\.input_layernorm\.", ".attn_norm."),
    (r"\.pre_feedforward_layernorm\.", ".ffn_norm."), (r"\.post_feedforward_layernorm\.", ".post_ffw_norm."),
    (r"^model\.layers\.", "blk."),
]


def gguf_name(hf_name: str, gemma_norms: bool = False) -> str:
    """llama.cpp's tensor name for an HF tensor name (the subset decoder-only LMs use)."""
    if gemma_norms:  # Gemma 2/3: post_attention_layernorm is a post-norm, not the FFN's pre-norm
        hf_name = hf_name.replace(".post_attention_layernorm.", ".post_attention_norm.")
    else:
        hf_name = hf_name.replace(".post_attention_layernorm.", ".ffn_norm.")
    for pattern, repl in _GGUF_NAMES:
        hf_name = re.sub(pattern, repl, hf_name)
    return hf_name


def gguf_tensor_list(info: ModelInfo) -> list[tuple[str, list[int]]]:
    """(GGUF name, ggml shape ne[0..]) for every tensor the converter would write, from the model's shapes."""
    if info.gguf_tensors:
        return [(name, shape) for name, _t, shape in info.gguf_tensors]
    gemma = str(info.config.get("model_type", "")).startswith(("gemma2", "gemma3"))
    out = []
    for name, shape in info.tensors.items():
        if "rotary_emb" in name:
            continue
        out.append((gguf_name(name, gemma), list(reversed(shape))))
    return out


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _layer(name: str) -> int:
    m = re.match(r"blk\.(\d+)\.", name)
    return int(m.group(1)) if m else -1


def gguf_tensor_type(name: str, shape: list[int], qtype: str, n_layers: int, tied: bool) -> str:
    """The ggml type llama.cpp's quantizer gives this tensor for file type ``qtype``."""
    default, output_type = GGUF_TYPES[qtype]
    quantizable = len([d for d in shape if d > 1]) >= 2 and name.endswith("weight") and "_norm" not in name
    if not quantizable:
        return "F32"
    if default in ("F16", "BF16"):
        return default
    t = default
    if name == "output.weight" or (tied and name == "token_embd.weight"):
        t = "Q8_0" if shape[0] % GGML_BLOCKS[default][0] else output_type
    elif ".attn_v." in name and qtype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(_layer(name), n_layers):
        t = "Q6_K"
    elif ".attn_v." in name and qtype == "Q4_K_S" and _layer(name) < 4:
        t = "Q5_K"
    elif ".ffn_down." in name and qtype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(_layer(name), n_layers):
        t = "Q6_K"
    elif ".ffn_down." in name and qtype == "Q4_K_S" and _layer(name) < n_layers // 8:
        t = "Q5_K"
    block = GGML_BLOCKS[t][0]
    if shape[0] % block:
        t = _FALLBACK.get(t, t)
        if shape[0] % GGML_BLOCKS[t][0]:
            t = "F16"
    return t


def tensor_bytes(shape: list[int], ggml_type: str) -> int:
    """Bytes of one tensor stored as ``ggml_type``."""
    per, size = GGML_BLOCKS[ggml_type]
    return math.prod(shape) // per * size


def gguf_plan(info: ModelInfo, qtype: str) -> list[tuple[str, str, int]]:
    """(name, type, bytes) per tensor for a GGUF of file type ``qtype``."""
    qtype = qtype.upper()
    if qtype not in GGUF_TYPES:
        raise ValueError(f"unknown GGUF type {qtype!r}; known: {', '.join(GGUF_TYPES)}")
    out = []
    for name, shape in gguf_tensor_list(info):
        t = gguf_tensor_type(name, shape, qtype, info.layers, info.tied_embeddings)
        out.append((name, t, tensor_bytes(shape, t)))
    return out


def gguf_size_bytes(info: ModelInfo, qtype: str) -> int:
    """Predicted size of the GGUF file llama.cpp writes for this model at ``qtype`` (header + aligned tensors)."""
    plan = gguf_plan(info, qtype)
    data = sum(_align(b) for _, _, b in plan)
    if info.kind == "gguf" and info.details.get("meta_bytes"):
        return int(info.details["meta_bytes"]) + data  # same header as the source file (types aside)
    infos = sum(8 + len(n) + 4 + 8 * len(shape) + 4 + 8 for n, shape in gguf_tensor_list(info))
    meta = info.tokenizer_bytes + 4096  # tokenizer arrays + a few dozen scalar keys
    return _align(24 + meta + infos) + data


def _align(n: int) -> int:
    return (n + GGUF_ALIGN - 1) // GGUF_ALIGN * GGUF_ALIGN


def _is_linear(name: str, shape: list[int]) -> bool:
    """Weights bitsandbytes quantizes: 2-D Linear layers except embeddings and the LM head."""
    return len(shape) == 2 and name.endswith(".weight") and "embed_tokens" not in name and "lm_head" not in name


def weights_bytes(info: ModelInfo, precision: str) -> int:
    """Bytes of the weights alone in ``precision`` (bf16/fp16, bitsandbytes 8bit/4bit, or a GGUF type)."""
    p = precision if precision in ("bf16", "fp16", "8bit", "4bit") else precision.upper()
    if p in GGUF_TYPES:
        return sum(b for _, _, b in gguf_plan(info, p))
    if p not in ("bf16", "fp16", "8bit", "4bit"):
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if info.kind == "gguf" or not info.tensors:
        return info.n_params * 2
    total = 0
    for name, shape in info.tensors.items():
        n = math.prod(shape)
        if p in ("bf16", "fp16") or not _is_linear(name, shape):
            total += 2 * n
        elif p == "8bit":  # int8 weights plus one fp32 scale per output row
            total += n + 4 * shape[0]
        else:  # nf4: two weights per byte plus one fp32 absmax per block
            total += n // 2 + 4 * math.ceil(n / NF4_BLOCK)
    return total


def kv_cache_bytes(info: ModelInfo, n_ctx: int, bytes_per_value: int = 2) -> int:
    """KV cache: layers × KV heads × head dim × 2 (K and V) × bytes × context."""
    return info.layers * info.kv_heads * info.head_dim * 2 * bytes_per_value * n_ctx


def overhead_bytes(info: ModelInfo, precision: str, n_ctx: int, n_batch: int = 512) -> int:
    """Working memory beside weights and KV cache: compute buffers (llama.cpp) or activations (transformers)."""
    h, inter, vocab = info.hidden_size, info.intermediate_size or 4 * info.hidden_size, info.vocab_size
    if precision.upper() in GGUF_TYPES:
        # llama.cpp's compute buffer for one micro-batch (fp32 activations and attention scores over the
        # context; flash attention, on by default on GPUs, keeps the scores from growing past a few k tokens)
        # plus the output buffer holding one row of logits.
        return 4 * n_batch * (6 * h + 2 * inter) + 4 * n_batch * min(n_ctx, 8192) * info.heads + 8 * vocab
    tokens = min(n_ctx, n_batch)
    acts = 2 * tokens * (4 * h + 3 * inter) + 4 * tokens * tokens * max(info.heads, 1)
    logits = 4 * 2 * vocab * 2  # last-token logits in fp32, twice (logits + softmax copy)
    # bitsandbytes during prefill: 4-bit dequantizes one whole weight to bf16; LLM.int8 keeps an int32 product.
    dequant = {"4bit": 2 * h * inter, "8bit": 4 * tokens * inter}.get(precision, 0)
    return acts + logits + dequant


def total_bytes(info: ModelInfo, precision: str, n_ctx: int) -> int:
    """Weights + KV cache for ``n_ctx`` tokens + overhead: what the model needs to run."""
    return weights_bytes(info, precision) + kv_cache_bytes(info, n_ctx) + overhead_bytes(info, precision, n_ctx)
