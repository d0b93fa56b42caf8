"""Everything the converter's F16 GGUF says besides the big weights, derived in-process (no converter child).

For llama, qwen2 and gemma3 with a byte-level BPE or SentencePiece tokenizer this produces the same KV pairs
(key by key, byte for byte), the same tensor list and the same small tensors (norms, biases, generated rope
factors) as ``convert_hf_to_gguf.py --outtype f16``, in the skeleton format skeleton.py loads. Anything it
does not recognise raises NativeUnsupported, and the build runs the converter instead.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorag.build.fast import arch as fast_arch
from lorag.build.fast.general_meta import NativeUnsupported, add_general, json_object
from lorag.build.fast.gguf_values import KvList
from lorag.build.fast.hparams_meta import add_hparams, load_hparams, rope_parameters
from lorag.build.fast.reader import TensorLocation, index_file, index_model, read_tensor
from lorag.build.fast.tokenizer_meta import add_bpe_vocab, add_spm_vocab, load_tokenizer_json, spm_vocab

F32, F16 = 0, 1
GGUF_ALIGNMENT = 32
_SKIPPED = (".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq")
_LAYER = re.compile(r"model\.layers\.(\d+)\.(.+)")
_SMALL_COMMON = {
    "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.bias": "attn_output.bias", "mlp.gate_proj.bias": "ffn_gate.bias",
    "mlp.up_proj.bias": "ffn_up.bias", "mlp.down_proj.bias": "ffn_down.bias",
}
_SMALL_LAYER = {
    "llama": {**_SMALL_COMMON, "post_attention_layernorm.weight": "ffn_norm.weight"},
    "qwen2": {**_SMALL_COMMON, "post_attention_layernorm.weight": "ffn_norm.weight"},
    "gemma3": {**_SMALL_COMMON, "post_attention_layernorm.weight": "post_attention_norm.weight",
               "pre_feedforward_layernorm.weight": "ffn_norm.weight",
               "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
               "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight"},
}


@dataclass
class NativeTensor:
    """One tensor of the F16 GGUF: name, numpy-order shape, ggml type; ``data`` only for small tensors."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    nbytes: int
    data: bytes | None


@dataclass
class NativeMetadata:
    """The converter's KV pairs (packed) and tensor list for one model directory."""

    hf_arch: str
    gguf_arch: str
    kv: list[tuple[str, bytes, int, Any]]
    tensors: list[NativeTensor]
    hparams: dict[str, Any]


def native_metadata(model_dir: Path, model_name: str | None = None) -> NativeMetadata:
    """Derive the skeleton of ``convert_hf_to_gguf.py --outtype f16`` for ``model_dir``; NativeUnsupported if unsure."""
    hparams = load_hparams(model_dir)
    hf_arch = str((hparams.get("architectures") or ["?"])[0])
    if hf_arch not in fast_arch.NATIVE:
        raise NativeUnsupported(f"architecture {hf_arch}")
    gguf_arch = fast_arch.NATIVE[hf_arch]
    tokenizer = load_tokenizer_json(model_dir)
    tensors = _tensors(model_dir, gguf_arch, hparams, tokenizer)
    kv = KvList()
    kv.string("general.architecture", gguf_arch)
    # the name heuristics read config.json itself (its _name_or_path), not AutoConfig's view of it
    add_general(kv, model_dir, json_object(model_dir / "config.json"), model_name,
                sum(math.prod(t.shape) for t in tensors))
    add_hparams(kv, gguf_arch, hparams, model_dir)
    kv.u32("general.quantization_version", 2)
    _add_vocab(kv, gguf_arch, model_dir, hparams, tokenizer)
    return NativeMetadata(hf_arch, gguf_arch, kv.packed(), tensors, hparams)


def _add_vocab(kv: KvList, gguf_arch: str, model_dir: Path, hparams: dict[str, Any],
               tokenizer: dict[str, Any] | None) -> None:
    has_spm = (model_dir / "tokenizer.model").is_file()
    if gguf_arch == "llama":
        config = json_object(model_dir / "tokenizer_config.json")
        if (model_dir / "tekken.json").is_file() or config.get("tokenizer_class") == "HybridDNATokenizer":
            raise NativeUnsupported("Mistral / HybridDNA tokenizer")
        if (prefix := config.get("add_prefix_space")) is not None:
            kv.boolean("tokenizer.ggml.add_space_prefix", prefix)
        if hparams.get("vocab_size") in (32016, 49152):
            raise NativeUnsupported("CodeLlama / Granite vocabulary")
        if not has_spm and tokenizer is not None and _is_llama_hf(tokenizer):
            raise NativeUnsupported("Llama 2 style BPE tokenizer.json")
    if has_spm:
        add_spm_vocab(kv, model_dir, hparams, tokenizer)
        if gguf_arch == "gemma3":
            kv.boolean("tokenizer.ggml.add_space_prefix", False)
    elif tokenizer is not None:
        add_bpe_vocab(kv, model_dir, hparams, tokenizer)
    else:
        raise NativeUnsupported("no tokenizer.json or tokenizer.model")


def _is_llama_hf(tokenizer: dict[str, Any]) -> bool:
    model = tokenizer.get("model", {})
    llama3 = model.get("type") == "BPE" and model.get("ignore_merges", False) and not model.get("byte_fallback", True)
    return (not llama3 and model.get("type") == "BPE" and bool(model.get("byte_fallback", False))
            and tokenizer.get("decoder", {}).get("type") == "Sequence")


def _small_name(hf_name: str, gguf_arch: str) -> str | None:
    if hf_name == "model.norm.weight":
        return "output_norm.weight"
    match = _LAYER.fullmatch(hf_name)
    if match and match.group(2) in _SMALL_LAYER[gguf_arch]:
        return f"blk.{match.group(1)}.{_SMALL_LAYER[gguf_arch][match.group(2)]}"
    return None


def _embedding_rows(model_dir: Path, hparams: dict[str, Any], tokenizer: dict[str, Any] | None) -> int:
    # gemma3 drops embedding rows past the real vocabulary (Gemma3Model.modify_tensors)
    if (model_dir / "tokenizer.model").is_file():
        return len(spm_vocab(model_dir, hparams)[0])
    if tokenizer is None:
        raise NativeUnsupported("no tokenizer")
    return len(tokenizer["model"]["vocab"]) + len(tokenizer["added_tokens"])


def _tensors(model_dir: Path, gguf_arch: str, hparams: dict[str, Any],
             tokenizer: dict[str, Any] | None) -> list[NativeTensor]:
    out = _generated(gguf_arch, hparams)
    for hf_name, loc in _index(model_dir).items():
        if hf_name.endswith(_SKIPPED):
            continue
        if (name := fast_arch.gguf_name(hf_name)) is not None:
            rows = loc.shape[0]
            if gguf_arch == "gemma3" and name == "token_embd.weight":
                rows = min(rows, _embedding_rows(model_dir, hparams, tokenizer))
            shape = (rows, *loc.shape[1:])
            out.append(NativeTensor(name, shape, F16, 2 * math.prod(shape), None))
        elif (name := _small_name(hf_name, gguf_arch)) is not None:
            out.append(_small_tensor(name, hf_name, loc, gguf_arch, hparams))
        else:
            raise NativeUnsupported(f"tensor {hf_name}")
    return out


def _index(model_dir: Path) -> dict[str, TensorLocation]:
    """Every tensor of the weight files the converter reads: the index's shards, else model*.safetensors."""
    if (model_dir / "model.safetensors.index.json").is_file():
        return index_model(model_dir)
    parts = sorted(p.name for p in model_dir.iterdir()
                   if p.name.startswith("model") and p.name.endswith(".safetensors"))
    if not parts:
        raise NativeUnsupported("no safetensors weights")
    out: dict[str, TensorLocation] = {}
    for part in parts:
        out.update(index_file(model_dir / part))
    return out


def _small_tensor(name: str, hf_name: str, loc: TensorLocation, gguf_arch: str,
                  hparams: dict[str, Any]) -> NativeTensor:
    """A norm or bias exactly as the converter stores it: float32 (after its per-family adjustments)."""
    import torch

    if len(loc.shape) != 1:
        raise NativeUnsupported(f"{hf_name} is not one-dimensional")
    data = read_tensor(loc)
    if data.dtype not in (torch.float16, torch.float32):
        data = data.to(torch.float32)
    data = fast_arch.rotary_permute(data, hf_name.replace(".bias", ".weight"), gguf_arch, hparams)
    if gguf_arch == "gemma3" and name.endswith("norm.weight"):
        data = data + 1.0  # Gemma3RMSNorm scales by (1 + weight): the converter stores the sum
    raw = data.to(torch.float32).numpy().tobytes()
    return NativeTensor(name, tuple(loc.shape), F32, len(raw), raw)


def _generated(gguf_arch: str, hparams: dict[str, Any]) -> list[NativeTensor]:
    """LlamaModel.generate_extra_tensors: the llama3 RoPE frequency factors."""
    if gguf_arch != "llama":
        return []
    rope = rope_parameters(hparams)
    params = rope.get("full_attention", rope)
    if not params or str(params.get("rope_type", "")).lower() != "llama3":
        return []
    import torch

    base = params.get("rope_theta", 10000.0)
    dim = hparams.get("head_dim") or hparams["hidden_size"] // hparams["num_attention_heads"]
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor = params.get("factor", 8.0)
    low, high = params.get("low_freq_factor", 1.0), params.get("high_freq_factor", 4.0)
    old_context = params.get("original_max_position_embeddings", 8192)
    low_wavelen, high_wavelen = old_context / low, old_context / high
    factors: list[Any] = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (old_context / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    raw = torch.tensor(factors, dtype=torch.float32).numpy().tobytes()
    return [NativeTensor("rope_freqs.weight", (len(factors),), F32, len(raw), raw)]


def write_skeleton(meta: NativeMetadata, work_dir: Path, streamed: re.Pattern[str]) -> None:
    """Write meta.json / kv.bin / small.bin as the converter child does, so load_skeleton reads either."""
    work_dir.mkdir(parents=True, exist_ok=True)
    kv_bin = bytearray()
    kv_meta = []
    for key, raw, vtype, plain in meta.kv:
        kv_meta.append([key, len(kv_bin), len(raw), vtype, plain])
        kv_bin += raw
    tensors = []
    with open(work_dir / "small.bin", "wb") as small:
        for t in meta.tensors:
            offset = -1
            if not streamed.fullmatch(t.name):
                if t.data is None:
                    raise NativeUnsupported(f"{t.name} has no bytes")
                offset = small.tell()
                small.write(t.data)
            tensors.append([t.name, list(t.shape), t.ggml_type, t.nbytes, offset])
    (work_dir / "kv.bin").write_bytes(bytes(kv_bin))
    doc = {"hf_arch": meta.hf_arch, "gguf_arch": meta.gguf_arch, "kv": kv_meta, "tensors": tensors,
           "alignment": GGUF_ALIGNMENT, "hparams": meta.hparams, "native": True}
    (work_dir / "meta.json").write_text(json.dumps(doc, default=str), encoding="utf-8")



def write_native_skeleton(model_dir: Path, work_dir: Path, model_name: str | None) -> str | None:
    """Write the skeleton natively; None on success, else why the converter must run instead."""
    from lorag.build.fast.skeleton import STREAMED

    try:
        write_skeleton(native_metadata(model_dir, model_name), work_dir, re.compile(STREAMED))
    except NativeUnsupported as exc:
        return str(exc)
    return None
