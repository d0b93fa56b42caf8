"""Prepare the model directory the converter reads: config, the fine-tune's tokenizer and its chat template."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from lorag.build.merge import WEIGHT_SUFFIXES
from lorag.inspect.chat_template import chat_template_of, finetune_chat_template
from lorag.inspect.files import read_json_or_empty

__all__ = ["TOKENIZER_FILES", "chat_template_of", "pin_template", "stage_model_dir"]

# Files a fine-tune may change (added tokens, a new chat template); they win over the base's copies.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "tokenizer.model", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json",
)
_SKIP = {"README.md", "adapter_config.json", "model.safetensors.index.json", ".gitattributes"}


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
        pin_template(out_dir, template)
    return template


def pin_template(out_dir: Path, template: str) -> None:
    """Make ``out_dir`` carry ``template`` where the converter looks first (a linked file is replaced, not edited)."""
    # Same precedence as the converter: tokenizer_config.json's chat_template wins over chat_template.jinja.
    cfg_path = out_dir / "tokenizer_config.json"
    cfg = read_json_or_empty(cfg_path)
    if "chat_template" in cfg:
        if cfg["chat_template"] != template:
            cfg["chat_template"] = template
            if cfg_path.is_symlink():
                cfg_path.unlink()
            cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    jinja = out_dir / "chat_template.jinja"
    if jinja.is_symlink():
        jinja.unlink()
    jinja.write_text(template, encoding="utf-8")
