"""Prepare the model directory the converter reads: config, the fine-tune's tokenizer and its chat template."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from lorag.models.merge import WEIGHT_SUFFIXES

# Files a fine-tune may change (added tokens, a new chat template); they win over the base's copies.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "tokenizer.model", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json",
)
_SKIP = {"README.md", "adapter_config.json", "model.safetensors.index.json", ".gitattributes"}


def chat_template_of(model_dir: Path) -> str | None:
    """The chat template a directory defines, with the converter's precedence (tokenizer_config first)."""
    cfg = _tokenizer_config(model_dir)
    template = cfg.get("chat_template")
    if isinstance(template, list):
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    if isinstance(template, str):
        return template
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    cjson = model_dir / "chat_template.json"
    if cjson.is_file():
        value = json.loads(cjson.read_text(encoding="utf-8")).get("chat_template")
        return value if isinstance(value, str) else None
    return None


def finetune_chat_template(adapter_dir: Path, base_dir: Path) -> str | None:
    """The fine-tune's chat template: the adapter directory's if it has one, else the base's."""
    return chat_template_of(adapter_dir) or chat_template_of(base_dir)


def stage_model_dir(base_dir: Path, adapter_dir: Path, out_dir: Path, link_weights: bool = False) -> str | None:
    """Copy the base's non-weight files into ``out_dir``, overlay the adapter's tokenizer files, pin the template.

    With ``link_weights`` the base weights are symlinked too (adapter mode converts the unmerged base).
    Returns the chat template the GGUF must carry.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    template = finetune_chat_template(adapter_dir, base_dir)
    for entry in sorted(base_dir.iterdir()):
        if not entry.is_file() or entry.name in _SKIP:
            continue
        target = out_dir / entry.name
        if entry.name.endswith(WEIGHT_SUFFIXES) or entry.name.endswith(".index.json"):
            if link_weights and not target.exists():
                os.symlink(entry.resolve(), target)
            continue
        if not target.exists():
            shutil.copy2(entry, target)
    for name in TOKENIZER_FILES:
        if (adapter_dir / name).is_file():
            shutil.copy2(adapter_dir / name, out_dir / name)
    if template is not None:
        _pin_template(out_dir, template)
    return template


def _pin_template(out_dir: Path, template: str) -> None:
    # The converter prefers tokenizer_config.json's chat_template over chat_template.jinja: set both.
    cfg_path = out_dir / "tokenizer_config.json"
    cfg = _tokenizer_config(out_dir)
    if "chat_template" in cfg and cfg["chat_template"] != template:
        cfg["chat_template"] = template
        cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if "chat_template" not in cfg:
        (out_dir / "chat_template.jinja").write_text(template, encoding="utf-8")


def _tokenizer_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "tokenizer_config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
