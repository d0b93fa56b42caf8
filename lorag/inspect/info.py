"""ModelInfo: what inspection found out about a model, the value every later step (memory, placement) reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorag.inspect.adapter import AdapterInfo


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
    fields = {k: getattr(info, k) for k in AdapterInfo.__dataclass_fields__ if k not in ("chat_template", "settings")}
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in fields.items()} | {
        "has_chat_template": info.chat_template is not None}
