"""The one reader of a model directory's chat template, with llama.cpp's converter's precedence.

Precedence, highest first (the order ``convert_hf_to_gguf.py`` uses, so what lorag reports is what the GGUF gets):

1. ``tokenizer_config.json`` → ``chat_template`` (a string, or the entry named ``default`` of a list);
2. ``chat_template.jinja``;
3. ``chat_template.json`` → ``chat_template``.

A fine-tune's template is the adapter directory's when it has one, else the base's.

Usage::

    template = finetune_chat_template(adapter_dir, base_dir)   # None: the model has no chat template
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorag.inspect.files import read_json_or_empty


def chat_template_of(model_dir: Path) -> str | None:
    """The chat template a directory defines (see the module docstring for the precedence), or None."""
    template = _from_tokenizer_config(read_json_or_empty(model_dir / "tokenizer_config.json").get("chat_template"))
    if template is not None:
        return template
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    value = read_json_or_empty(model_dir / "chat_template.json").get("chat_template")
    return value if isinstance(value, str) else None


def finetune_chat_template(adapter_dir: Path, base_dir: Path) -> str | None:
    """The fine-tune's chat template: the adapter directory's if it has one, else the base's."""
    return chat_template_of(adapter_dir) or chat_template_of(base_dir)


def has_chat_template(model_dir: Path) -> bool:
    """True when the directory defines a non-empty chat template."""
    return bool(chat_template_of(model_dir))


def _from_tokenizer_config(value: Any) -> str | None:
    if isinstance(value, list):  # named templates: [{"name": "default", "template": "..."}, ...]
        value = next((t.get("template") for t in value if isinstance(t, dict) and t.get("name") == "default"), None)
    return value if isinstance(value, str) and value else None
