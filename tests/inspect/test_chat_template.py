"""One chat-template reader, with the converter's precedence: tokenizer_config.json, chat_template.jinja, .json."""

from __future__ import annotations

import json
from pathlib import Path

from lorag.inspect.chat_template import chat_template_of, finetune_chat_template, has_chat_template


def test_precedence(tmp_path: Path) -> None:
    assert chat_template_of(tmp_path) is None and not has_chat_template(tmp_path)
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": "from json"}))
    assert chat_template_of(tmp_path) == "from json"
    (tmp_path / "chat_template.jinja").write_text("from jinja")
    assert chat_template_of(tmp_path) == "from jinja"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "from tokenizer_config"}))
    assert chat_template_of(tmp_path) == "from tokenizer_config" and has_chat_template(tmp_path)


def test_named_templates_and_broken_files(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": [
        {"name": "tool_use", "template": "tools"}, {"name": "default", "template": "plain"}]}))
    assert chat_template_of(tmp_path) == "plain"
    (tmp_path / "tokenizer_config.json").write_text("{broken")
    assert chat_template_of(tmp_path) is None


def test_the_adapter_wins_over_its_base(tmp_path: Path) -> None:
    adapter, base = tmp_path / "adapter", tmp_path / "base"
    adapter.mkdir()
    base.mkdir()
    (base / "chat_template.jinja").write_text("base")
    assert finetune_chat_template(adapter, base) == "base"
    (adapter / "chat_template.jinja").write_text("fine-tune")
    assert finetune_chat_template(adapter, base) == "fine-tune"
