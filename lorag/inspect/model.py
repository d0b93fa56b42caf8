"""Tell what a model path is (HF model, PEFT adapter, GGUF, bitsandbytes checkpoint, Ollama name), no weights loaded.

Usage::

    info = inspect_path("outputs/lora_X", search_paths=["~/models"])
    print(info.kind, info.architecture, info.n_params, info.adapter.base_path if info.adapter else None)
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lorag.errors import ModelError
from lorag.models.adapter import AdapterInfo

GGUF_MAGIC = b"GGUF"
# Ollama names look like `name:tag` or `namespace/name:tag`; a real path wins over this pattern.
_OLLAMA_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?:[\w.\-]+$")


@dataclass
class ModelInfo:
    """What ``inspect_path`` found: the kind of model and the numbers that decide how much memory it needs."""

    kind: str  # "hf" | "adapter" | "gguf" | "bnb" | "ollama"
    path: str
    architecture: str = ""
    n_params: int = 0
    dtype: str = ""
    context_length: int = 0
    has_chat_template: bool = False
    layers: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    hidden_size: int = 0
    vocab_size: int = 0
    heads: int = 0
    intermediate_size: int = 0
    tied_embeddings: bool = False
    quantization: str = ""  # GGUF file type ("Q4_K_M"), or "4bit"/"8bit" for bitsandbytes checkpoints
    file_bytes: int = 0
    params_source: str = ""  # "tensors" (weight file headers) or "config" (shapes implied by config.json)
    adapter: AdapterInfo | None = None
    base: ModelInfo | None = None
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    # HF-named tensor shapes (from weight headers, or implied by config); GGUF infos carry (name, type, shape).
    tensors: dict[str, list[int]] = field(default_factory=dict, repr=False)
    gguf_tensors: list[tuple[str, str, list[int]]] = field(default_factory=list, repr=False)
    tokenizer_bytes: int = 0  # estimated bytes of tokenizer metadata once written into a GGUF
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no tensor lists)."""
        out: dict[str, Any] = {}
        for key in ("kind", "path", "architecture", "n_params", "dtype", "context_length", "has_chat_template",
                    "layers", "kv_heads", "head_dim", "hidden_size", "vocab_size", "heads", "intermediate_size",
                    "tied_embeddings", "quantization", "file_bytes", "params_source", "details"):
            out[key] = getattr(self, key)
        out["adapter"] = _adapter_dict(self.adapter) if self.adapter else None
        out["base"] = self.base.to_dict() if self.base else None
        return out


def _adapter_dict(info: AdapterInfo) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(info).items() if k != "chat_template"} | {
        "has_chat_template": info.chat_template is not None}


def is_ollama_name(value: str) -> bool:
    """True for `name:tag` strings that are not existing paths."""
    return bool(_OLLAMA_NAME.match(value)) and not Path(value).expanduser().exists()


def inspect_path(path: str | Path, search_paths: tuple[str, ...] | list[str] = (), ollama_host: str = "") -> ModelInfo:
    """Inspect ``path`` and return a ModelInfo; raise ModelError/AdapterError with what to do when it is unusable."""
    text = str(path)
    if is_ollama_name(text):
        from lorag.generate.ollama import show_model

        return _ollama_info(text, show_model(text, ollama_host or "http://127.0.0.1:11434"))
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
    from lorag.models.adapter import check_adapter_matches_base, read_adapter, resolve_base

    adapter = read_adapter(p, search_paths)
    base_dir = base or adapter.base_path or resolve_base(adapter.base_name, search_paths, p)
    check_adapter_matches_base(adapter, base_dir)
    base_info = inspect_hf(base_dir)
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


# --- safetensors -------------------------------------------------------------------------------------------------

def read_safetensors_header(path: Path) -> dict[str, Any]:
    """Read a safetensors file's JSON header (names, dtypes, shapes, offsets) and check the file is complete."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ModelError(f"{path} is not a safetensors file (shorter than 8 bytes).", "Re-copy or re-save it.")
            (n,) = struct.unpack("<Q", raw)
            size = path.stat().st_size
            if n > min(size - 8, 100_000_000):
                raise ModelError(f"{path} is truncated or not a safetensors file (header of {n} bytes).",
                                 "Re-copy or re-save it.")
            header: dict[str, Any] = json.loads(fh.read(n))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}", "Re-copy or re-save the file.") from exc
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        raise ModelError(f"{path} is truncated: the header promises {8 + n + end} bytes, the file has {size}.",
                         "Re-copy or re-save it.")
    return header


def safetensors_shapes(directory: Path) -> tuple[dict[str, list[int]], dict[str, str]]:
    """Shapes and dtypes of every tensor in a directory's *.safetensors files (headers only)."""
    shapes: dict[str, list[int]] = {}
    dtypes: dict[str, str] = {}
    for f in sorted(directory.glob("*.safetensors")):
        for name, meta in read_safetensors_header(f).items():
            if name != "__metadata__":
                shapes[name] = list(meta["shape"])
                dtypes[name] = meta["dtype"]
    return shapes, dtypes


# --- Hugging Face model directories ------------------------------------------------------------------------------

def read_json(path: Path) -> dict[str, Any]:
    """Load a JSON object, turning any failure into a ModelError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}", "Check the file is complete JSON.") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path} must hold a JSON object.")
    return data


def text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The language-model part of a config (multimodal configs nest it under text_config)."""
    inner = cfg.get("text_config")
    return {**cfg, **inner} if isinstance(inner, dict) else cfg


def inspect_hf(p: Path) -> ModelInfo:
    """Inspect a Hugging Face model directory (config.json plus optional safetensors)."""
    from lorag.models.memory import config_tensor_shapes

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


def has_chat_template(p: Path) -> bool:
    """True when the directory carries a chat template (tokenizer_config.json or chat_template.jinja/json)."""
    if (p / "chat_template.jinja").exists() or (p / "chat_template.json").exists():
        return True
    tc = p / "tokenizer_config.json"
    return tc.exists() and bool(read_json(tc).get("chat_template"))


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
    """Inspect a GGUF file with gguf's GGUFReader (memory-mapped; no weights are read)."""
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ModelError(f"{p} is not a GGUF file (magic {magic!r}, expected b'GGUF').",
                         "Re-download or re-convert it with convert_hf_to_gguf.py.")
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(p))
    except (ValueError, OSError, IndexError) as exc:
        raise ModelError(f"{p} is a damaged GGUF file: {exc}", "Re-download or re-convert it.") from exc
    meta = {name: _field_value(f) for name, f in reader.fields.items() if not name.startswith("tokenizer.ggml.")}
    arch = str(meta.get("general.architecture", ""))
    info = ModelInfo(kind="gguf", path=str(p), architecture=arch, file_bytes=p.stat().st_size, dtype="gguf")

    def num(key: str) -> int:
        value = meta.get(f"{arch}.{key}", 0)
        return int(value) if isinstance(value, int | float) else 0

    info.layers, info.hidden_size, info.heads = num("block_count"), num("embedding_length"), num("attention.head_count")
    info.kv_heads = num("attention.head_count_kv") or info.heads
    info.head_dim = num("attention.key_length") or (info.hidden_size // info.heads if info.heads else 0)
    info.context_length, info.intermediate_size = num("context_length"), num("feed_forward_length")
    info.has_chat_template = "tokenizer.chat_template" in reader.fields
    info.quantization = GGUF_FILE_TYPES.get(int(meta.get("general.file_type", -1) or -1), "")
    info.gguf_tensors = [(t.name, t.tensor_type.name, [int(x) for x in t.shape]) for t in reader.tensors]
    info.n_params = sum(int(t.n_elements) for t in reader.tensors)
    names = {t[0] for t in info.gguf_tensors}
    info.tied_embeddings = "output.weight" not in names
    embd = next((t for t in info.gguf_tensors if t[0] == "token_embd.weight"), None)
    info.vocab_size = embd[2][1] if embd else 0
    info.params_source = "tensors"
    info.details = {"types": _type_counts(info.gguf_tensors), "meta_bytes": _gguf_data_start(reader)}
    return info


def _field_value(f: Any) -> Any:
    try:
        value = f.contents()
    except (ValueError, IndexError, TypeError):
        return None
    return value if isinstance(value, str | int | float | bool) else None


def _type_counts(tensors: list[tuple[str, str, list[int]]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, t, _shape in tensors:
        counts[t] = counts.get(t, 0) + 1
    return counts


def _gguf_data_start(reader: Any) -> int:
    return int(min((t.data_offset for t in reader.tensors), default=0))


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
