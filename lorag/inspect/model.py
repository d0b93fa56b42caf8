"""Tell what a model path is (HF model, PEFT adapter, GGUF, bitsandbytes checkpoint, Ollama name), no weights loaded.

Usage::

    info = inspect_path("outputs/lora_X", search_paths=["~/models"])
    print(info.kind, info.architecture, info.n_params, info.adapter.base_path if info.adapter else None)
"""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path
from typing import Any

from lorag.errors import LoragError, ModelError
from lorag.inspect.adapter import AdapterInfo, check_adapter_matches_base, read_adapter, resolve_base
from lorag.inspect.chat_template import has_chat_template
from lorag.inspect.files import (
    incomplete_message,
    missing_shards,
    read_json,
    read_safetensors_header,
    safetensors_shapes,
    text_config,
)
from lorag.inspect.gguf_meta import GGUFInfo, ggml_type_name, read_gguf
from lorag.inspect.info import ModelInfo
from lorag.inspect.shapes import config_tensor_shapes

GGUF_MAGIC = b"GGUF"
# Ollama names look like `name:tag` or `namespace/name:tag`; a real path wins over this pattern.
_OLLAMA_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?:[\w.\-]+$")


def is_ollama_name(value: str) -> bool:
    """True for `name:tag` strings that are not existing paths."""
    return bool(_OLLAMA_NAME.match(value)) and not Path(value).expanduser().exists()


def inspect_path(path: str | Path, search_paths: tuple[str, ...] | list[str] = (), ollama_host: str = "") -> ModelInfo:
    """Inspect ``path`` and return a ModelInfo; raise ModelError/AdapterError with what to do when it is unusable."""
    text = str(path)
    if is_ollama_name(text):
        # Imported here for start-up time: httpx takes longer to import than a GGUF header takes to read.
        from lorag.registry.ollama import DEFAULT_HOST, OllamaClient

        with OllamaClient(ollama_host or DEFAULT_HOST, timeout=5.0) as client:
            return _ollama_info(text, client.show(text))
    p = Path(text).expanduser()
    if not p.exists():
        raise ModelError(f"{p} does not exist.", "Give a model directory, a LoRA adapter directory, a .gguf file, "
                         "or an Ollama model name like `name:tag`.")
    if p.is_file():
        return inspect_gguf(p)
    if (p / "adapter_config.json").exists() or any(p.glob("adapter_model.*")):
        return inspect_adapter(p, search_paths)
    if (p / "config.json").exists():
        return inspect_hf(p)
    ggufs = sorted(p.glob("*.gguf"))
    if len(ggufs) == 1:
        return inspect_gguf(ggufs[0])
    raise ModelError(f"{p} holds neither config.json (a model), adapter_config.json (a LoRA adapter) "
                     "nor one .gguf file.",
                     "Point at the model directory itself.")


def inspect_adapter(p: Path, search_paths: tuple[str, ...] | list[str] = (), base: Path | None = None) -> ModelInfo:
    """Inspect a PEFT adapter on its base (``base`` overrides the one adapter_config.json names)."""
    adapter = read_adapter(p, search_paths)
    base_dir = base or adapter.base_path or resolve_base(adapter.base_name, search_paths, p)
    base_info = inspect_hf(Path(base_dir)) if (Path(base_dir) / "config.json").exists() else None
    check_adapter_matches_base(adapter, base_dir, base_info.tensors if base_info else None)
    assert base_info is not None  # a base without config.json was refused by the check
    info = ModelInfo(**{**_shared_fields(base_info), "kind": "adapter", "path": str(p)})
    info.has_chat_template = adapter.chat_template is not None or base_info.has_chat_template
    info.adapter, info.base = adapter, base_info
    info.details = {"adapter_params": adapter_param_count(adapter)}
    return info


def _shared_fields(base: ModelInfo) -> dict[str, Any]:
    keys = ("architecture", "n_params", "dtype", "context_length", "layers", "kv_heads", "head_dim", "hidden_size",
            "vocab_size", "heads", "intermediate_size", "tied_embeddings", "params_source", "config", "tensors",
            "tokenizer_bytes", "quantization")
    return {k: getattr(base, k) for k in keys}


def adapter_param_count(adapter: AdapterInfo) -> int:
    """Number of trainable values stored in the adapter's weight file."""
    if adapter.weights_file.suffix != ".safetensors":
        return 0
    return sum(math.prod(v["shape"]) for k, v in read_safetensors_header(adapter.weights_file).items()
               if k != "__metadata__")


# --- Hugging Face model directories ------------------------------------------------------------------------------

def inspect_hf(p: Path) -> ModelInfo:
    """Inspect a Hugging Face model directory (config.json plus optional safetensors)."""
    missing = missing_shards(p)
    if missing:
        raise ModelError(incomplete_message(p, missing), "Copy the missing shard(s) next to the index, or download "
                         "the model again.")
    cfg = text_config(read_json(p / "config.json"))
    hidden = int(cfg.get("hidden_size", 0))
    heads = int(cfg.get("num_attention_heads", 0))
    info = ModelInfo(kind="hf", path=str(p), config=cfg)
    info.architecture = (cfg.get("architectures") or [cfg.get("model_type", "")])[0]
    info.hidden_size, info.heads = hidden, heads
    info.layers = int(cfg.get("num_hidden_layers", 0))
    info.kv_heads = int(cfg.get("num_key_value_heads") or heads)
    info.head_dim = int(cfg.get("head_dim") or (hidden // heads if heads else 0))
    info.vocab_size = int(cfg.get("vocab_size", 0))
    info.intermediate_size = int(cfg.get("intermediate_size", 0))
    info.tied_embeddings = bool(cfg.get("tie_word_embeddings", False))
    info.context_length = int(cfg.get("max_position_embeddings", 0))
    info.has_chat_template = has_chat_template(p)
    info.tokenizer_bytes = tokenizer_gguf_bytes(p, info.vocab_size, _sentencepiece(p, cfg))
    quant = cfg.get("quantization_config") or {}
    shapes, dtypes = safetensors_shapes(p)
    info.tensors = config_tensor_shapes(cfg) if quant or not shapes else shapes
    info.file_bytes = sum(f.stat().st_size for f in p.glob("*.safetensors"))
    info.n_params = sum(math.prod(s) for s in info.tensors.values())
    info.params_source = "config" if quant or not shapes else "tensors"
    info.dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or _common_dtype(dtypes))
    if quant.get("quant_method") == "bitsandbytes":
        info.kind = "bnb"
        info.quantization = "4bit" if quant.get("load_in_4bit") else "8bit"
        info.details["bnb_4bit_quant_type"] = quant.get("bnb_4bit_quant_type", "")
    return info


def _common_dtype(dtypes: dict[str, str]) -> str:
    names = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}
    values = list(dtypes.values())
    return names.get(max(set(values), key=values.count), "") if values else ""


def _sentencepiece(p: Path, cfg: dict[str, Any]) -> bool:
    """llama.cpp writes SentencePiece vocabularies (scores, no merges) for these models."""
    return (p / "tokenizer.model").exists() or str(cfg.get("model_type", "")).startswith("gemma")


def tokenizer_gguf_bytes(p: Path, vocab_size: int, sentencepiece: bool = False) -> int:
    """Bytes the tokenizer will take as GGUF metadata (token strings, types, merges or scores, template)."""
    tj = p / "tokenizer.json"
    if not tj.exists():
        # Without a tokenizer: about 7 bytes per BPE token, the same again for merges, plus array overheads.
        return vocab_size * (8 + 7 + 4 + 8 + 9)
    model = read_json(tj).get("model", {})
    vocab: dict[str, int] = model.get("vocab", {}) if isinstance(model.get("vocab"), dict) else {}
    added = read_json(tj).get("added_tokens", [])
    count = max(vocab_size, len(vocab) + len(added))
    tokens = sum(8 + len(t.encode("utf-8")) for t in vocab) + sum(8 + len(a["content"].encode()) for a in added)
    tokens += (count - len(vocab) - len(added)) * (8 + 12)  # "[PAD123456]" fillers up to the config's vocab size
    merges = 0 if sentencepiece else sum(8 + len((m if isinstance(m, str) else " ".join(m)).encode("utf-8"))
                                         for m in model.get("merges", []))
    scores = 4 * count if sentencepiece or model.get("type") == "Unigram" else 0
    template = 0
    if (p / "tokenizer_config.json").exists():
        template = len(str(read_json(p / "tokenizer_config.json").get("chat_template") or "").encode())
    return tokens + 4 * count + merges + scores + template


# --- GGUF files ---------------------------------------------------------------------------------------------------

GGUF_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
                   11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
                   17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}


def inspect_gguf(p: Path) -> ModelInfo:
    """Inspect a GGUF file from its header and tensor directory alone (the tokenizer arrays are skipped, not read)."""
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ModelError(f"{p} is not a GGUF file (magic {magic!r}, expected b'GGUF').",
                         "Re-download or re-convert it with convert_hf_to_gguf.py.")
    try:
        gguf = read_gguf(p, skip_prefix="tokenizer.ggml.")
    except (LoragError, ValueError, OSError, IndexError, struct.error) as exc:
        raise ModelError(f"{p} is a damaged GGUF file: {exc}", "Re-download or re-convert it.") from exc
    meta = {k: v for k, v in gguf.metadata.items() if isinstance(v, str | int | float | bool)}
    arch = str(meta.get("general.architecture", ""))
    info = ModelInfo(kind="gguf", path=str(p), architecture=arch, file_bytes=p.stat().st_size, dtype="gguf")

    def num(key: str) -> int:
        value = meta.get(f"{arch}.{key}", 0)
        return int(value) if isinstance(value, int | float) else 0

    info.layers, info.hidden_size, info.heads = num("block_count"), num("embedding_length"), num("attention.head_count")
    info.kv_heads = num("attention.head_count_kv") or info.heads
    info.head_dim = num("attention.key_length") or (info.hidden_size // info.heads if info.heads else 0)
    info.context_length, info.intermediate_size = num("context_length"), num("feed_forward_length")
    info.has_chat_template = "tokenizer.chat_template" in gguf.metadata
    info.quantization = GGUF_FILE_TYPES.get(int(meta.get("general.file_type", -1) or -1), "")
    info.gguf_tensors = [(t.name, ggml_type_name(t.ggml_type), list(t.dims)) for t in gguf.tensors]
    info.n_params = sum(math.prod(t.dims) for t in gguf.tensors)
    names = {t[0] for t in info.gguf_tensors}
    info.tied_embeddings = "output.weight" not in names
    embd = next((t for t in info.gguf_tensors if t[0] == "token_embd.weight"), None)
    info.vocab_size = embd[2][1] if embd else 0
    info.params_source = "tensors"
    info.details = {"types": _type_counts(info.gguf_tensors), "meta_bytes": _gguf_data_start(gguf)}
    return info


def _type_counts(tensors: list[tuple[str, str, list[int]]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, t, _shape in tensors:
        counts[t] = counts.get(t, 0) + 1
    return counts


def _gguf_data_start(gguf: GGUFInfo) -> int:
    return min((t.start for t in gguf.tensors), default=0)


# --- Ollama names -------------------------------------------------------------------------------------------------

def _ollama_info(name: str, show: dict[str, Any]) -> ModelInfo:
    details = show.get("details", {}) or {}
    mi = show.get("model_info", {}) or show.get("modelinfo", {}) or {}
    arch = str(mi.get("general.architecture", details.get("family", "")))
    info = ModelInfo(kind="ollama", path=name, architecture=arch, dtype="gguf",
                     quantization=str(details.get("quantization_level", "")))
    info.n_params = int(mi.get("general.parameter_count", 0) or 0)
    info.context_length = int(mi.get(f"{arch}.context_length", 0) or 0)
    info.layers = int(mi.get(f"{arch}.block_count", 0) or 0)
    info.hidden_size = int(mi.get(f"{arch}.embedding_length", 0) or 0)
    info.heads = int(mi.get(f"{arch}.attention.head_count", 0) or 0)
    info.kv_heads = int(mi.get(f"{arch}.attention.head_count_kv", 0) or info.heads)
    info.head_dim = int(mi.get(f"{arch}.attention.key_length", 0)
                        or (info.hidden_size // info.heads if info.heads else 0))
    info.has_chat_template = bool(show.get("template"))
    info.params_source = "ollama"
    info.details = {"parameter_size": details.get("parameter_size", ""), "family": details.get("family", "")}
    return info
