"""Read the replaced system's `rag_config.yaml` keys and map them onto lorag's, with a warning each.

Mapping (old `llm.*` key → lorag):
- `load_in_8bit: true`  → `llm.quantization: 4bit` (the old flag really loaded 4-bit weights); false → `none`
- `load_in_4bit: true`  → `llm.quantization: 4bit`
- `use_finetuned: true` + `finetuned_model_path`/`model_path`/`lora_path` → `llm.model`
- `use_finetuned: false` + `ollama_model` → `llm.backend: ollama`, `llm.model: <ollama_model>`
- `use_ollama_fallback: true` + `ollama_model` → `llm.fallback: <ollama_model>`; false → `llm.fallback: none`
- `ollama_base_url`/`ollama_url` → `llm.ollama_host`
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("lorag.config")

_PATH_KEYS = ("finetuned_model_path", "model_path", "lora_path", "adapter_path")
_HOST_KEYS = ("ollama_base_url", "ollama_url")
LEGACY_KEYS = ("load_in_8bit", "load_in_4bit", "use_finetuned", "use_ollama_fallback", "ollama_model",
               *_PATH_KEYS, *_HOST_KEYS)


def _warn(old: str, new: str) -> None:
    log.warning("config key llm.%s is deprecated; read as %s", old, new)


def translate_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """Return ``data`` with legacy `llm.*` keys rewritten to lorag's keys (new keys win)."""
    llm = data.get("llm")
    if not isinstance(llm, dict) or not any(k in llm for k in LEGACY_KEYS):
        return data
    old = {k: llm.pop(k) for k in LEGACY_KEYS if k in llm}
    new: dict[str, Any] = {}
    if old.get("load_in_8bit"):
        _warn("load_in_8bit", "llm.quantization: 4bit (the old flag actually loaded 4-bit; use 8bit for real 8-bit)")
        new["quantization"] = "4bit"
    elif "load_in_8bit" in old:
        _warn("load_in_8bit", "llm.quantization: none")
        new["quantization"] = "none"
    if old.get("load_in_4bit"):
        _warn("load_in_4bit", "llm.quantization: 4bit")
        new["quantization"] = "4bit"
    path = next((old[k] for k in _PATH_KEYS if old.get(k)), None)
    ollama_model = old.get("ollama_model")
    if old.get("use_finetuned", path is not None) and path:
        _warn("use_finetuned", f"llm.model: {path}")
        new["model"] = str(path)
    elif old.get("use_finetuned") is False and ollama_model:
        _warn("use_finetuned", f"llm.backend: ollama, llm.model: {ollama_model}")
        new.update(backend="ollama", model=str(ollama_model))
    if "use_ollama_fallback" in old:
        target = str(ollama_model) if old["use_ollama_fallback"] and ollama_model else "none"
        _warn("use_ollama_fallback", f"llm.fallback: {target}")
        new["fallback"] = target
    host = next((old[k] for k in _HOST_KEYS if old.get(k)), None)
    if host:
        _warn("ollama_base_url", f"llm.ollama_host: {host}")
        new["ollama_host"] = str(host)
    for key, value in new.items():
        llm.setdefault(key, value)
    return data
