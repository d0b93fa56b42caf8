"""The held-out prompts a build's behaviour is scored on: the user's file, the adapter's own evaluation lines, or
a small built-in generic set.

Lookup order: an explicit file (``--eval-prompts``, the request's ``eval_prompts``, ``build.eval_prompts``), then
an evaluation file named in the adapter's training config or README, then one lying beside the adapter (inside
its directory or next to it) whose name starts with eval, valid, val, test or heldout, then ``GENERIC_PROMPTS``.

A file is JSON lines (or a JSON list, or plain text with one prompt per line). A line is used through the first
of these fields it has: ``prompt`` (sent verbatim), ``messages`` / ``conversations`` (chat turns up to the last
user turn), ``question`` or ``instruction`` (+ ``input``) (one user turn). User turns are rendered with the
fine-tune's chat template when it has one, else as lorag's completion prompt ``質問：…\\n答え：``.

Usage::

    prompts = find_eval_prompts(adapter_dir, explicit=None)
    prompts.texts(tokenizer)     # the prompt strings, at most MAX_PROMPTS
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorag.errors import BuildError

MAX_PROMPTS = 8
MAX_READ_BYTES = 4 * 2**20  # of an eval file: whole lines up to here
# Generic: clearly not the adapter's own data, so a score on them says "general behaviour kept", nothing more.
GENERIC_PROMPTS = (
    "質問：日本の首都はどこですか？\n答え：",
    "質問：有給休暇を申請するときに必要なものは何ですか？\n答え：",
    "質問：会議の議事録には何を書けばよいですか？\n答え：",
    "Question: What is the capital of France?\nAnswer:",
    "Question: Why should expense reports include receipts?\nAnswer:",
    "以下の文を英語に翻訳してください。\n「明日の会議は午後三時からです。」\n翻訳：",
)
_NAME = re.compile(r"^(eval|evaluation|valid|validation|val|test|heldout|held[_-]out)([_.-].*)?\.(jsonl|json|txt)$",
                   re.IGNORECASE)
# Keys of common trainers' configs (TRL/HF scripts, Axolotl, LLaMA-Factory) that name the evaluation data.
_CONFIG_KEYS = ("eval_file", "validation_file", "eval_dataset", "eval_data", "test_file", "eval_path", "val_file")
_CONFIG_FILES = ("training_config.json", "train_config.json", "training_args.json", "trainer_config.json")
_README_FILE = re.compile(r"[\w./-]*(?:eval|valid|val|test|heldout)[\w.-]*\.jsonl", re.IGNORECASE)


@dataclass
class EvalPrompts:
    """Where the held-out prompts came from, and the parsed lines (each a prompt string or chat turns)."""

    source: str  # a file path, or "generic"
    lines: list[str | list[dict[str, str]]] = field(default_factory=list)
    skipped: int = 0

    @property
    def generic(self) -> bool:
        return self.source == "generic"

    @property
    def label(self) -> str:
        """How the summary names the set (the generic set says so plainly)."""
        return "generic built-in prompts (no evaluation lines found)" if self.generic else self.source

    def texts(self, tokenizer: Any, limit: int = MAX_PROMPTS) -> list[str]:
        """The first ``limit`` prompts as strings, chat turns rendered with the tokenizer's chat template."""
        return [_render(line, tokenizer) for line in self.lines[:limit]]


def find_eval_prompts(adapter_dir: Path, explicit: Path | None = None,
                      roots: tuple[Path, ...] = ()) -> EvalPrompts:
    """The held-out prompts for ``adapter_dir`` (see the module docstring for the lookup order).

    With ``roots`` (a build requested over HTTP) a found file outside them is passed over: the summary shows
    parts of the prompts, so a training config must not be able to point the server at any file.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise BuildError(f"eval prompts file {path} does not exist.",
                             "Pass a JSON-lines file with a prompt or question per line to --eval-prompts.")
        return read_eval_file(path)
    for path in _candidates(adapter_dir):
        if roots and not inside_roots(path, roots):
            continue
        prompts = read_eval_file(path)
        if prompts.lines:
            return prompts
    return EvalPrompts("generic", list(GENERIC_PROMPTS))


def inside_roots(path: Path, roots: tuple[Path, ...]) -> bool:
    """Whether ``path`` (symlinks resolved) lies inside one of ``roots``."""
    real = path.resolve()
    return any(real == r.resolve() or real.is_relative_to(r.resolve()) for r in roots)


def _candidates(adapter_dir: Path) -> list[Path]:
    named = [*_named_in_configs(adapter_dir), *_named_in_readme(adapter_dir)]
    beside = [p for folder in (adapter_dir, adapter_dir.parent) if folder.is_dir()
              for p in sorted(folder.iterdir()) if p.is_file() and _NAME.match(p.name)]
    seen: list[Path] = []
    for path in (*named, *beside):
        if path.is_file() and path not in seen:
            seen.append(path)
    return seen


def _named_in_configs(adapter_dir: Path) -> list[Path]:
    found = []
    for name in _CONFIG_FILES:
        try:
            data = json.loads((adapter_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for key in _CONFIG_KEYS:
            value = data.get(key) if isinstance(data, dict) else None
            if isinstance(value, str) and value:
                found.append(_relative_to(adapter_dir, value))
    return found


def _named_in_readme(adapter_dir: Path) -> list[Path]:
    try:
        text = (adapter_dir / "README.md").read_text(encoding="utf-8")
    except OSError:
        return []
    return [_relative_to(adapter_dir, m.group(0)) for m in _README_FILE.finditer(text)]


def _relative_to(adapter_dir: Path, raw: str) -> Path:
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    here = adapter_dir / path
    return here if here.is_file() else adapter_dir.parent / path


def read_eval_file(path: Path) -> EvalPrompts:
    """Parse one evaluation file; lines without a usable prompt are counted in ``skipped``."""
    try:
        text = _head(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"cannot read eval prompts file {path}: {exc}.",
                         "Pass a UTF-8 JSON-lines file with a prompt or question per line.") from exc
    rows = _rows(path, text)
    prompts = EvalPrompts(str(path))
    for row in rows:
        line = _prompt_of(row)
        if line:
            prompts.lines.append(line)
        else:
            prompts.skipped += 1
    return prompts


def _head(path: Path) -> str:
    """The file's text, or its whole lines within the first MAX_READ_BYTES: only a few prompts are used, and a
    validation set can be gigabytes. A JSON list cannot be cut, so one over the limit is refused."""
    with open(path, "rb") as fh:
        data = fh.read(MAX_READ_BYTES + 1)
    if len(data) <= MAX_READ_BYTES:
        return data.decode("utf-8")
    if data.lstrip().startswith(b"["):
        raise BuildError(f"eval prompts file {path} is a JSON list over {MAX_READ_BYTES // 2**20} MB.",
                         "Write its first prompts one JSON object per line (.jsonl); only the first lines are read.")
    return data[: data.rfind(b"\n") + 1].decode("utf-8")


def _rows(path: Path, text: str) -> list[Any]:
    if path.suffix.lower() == ".txt":
        return [line for line in text.splitlines() if line.strip()]
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(stripped)
        except ValueError as exc:
            raise BuildError(f"eval prompts file {path} is not valid JSON: {exc}.",
                             "Write one JSON object per line, or a JSON list.") from exc
        return rows if isinstance(rows, list) else []
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise BuildError(f"line {number} of eval prompts file {path} is not JSON: {exc}.",
                             "Write one JSON object per line, e.g. {\"prompt\": \"...\"}.") from exc
    return rows


def _prompt_of(row: Any) -> str | list[dict[str, str]] | None:
    if isinstance(row, str):
        return row if row.strip() else None
    if not isinstance(row, dict):
        return None
    if isinstance(row.get("prompt"), str) and row["prompt"].strip():
        return str(row["prompt"])
    turns = row.get("messages") or row.get("conversations")
    if isinstance(turns, list):
        return _turns_until_last_user(turns)
    question = row.get("question") or row.get("instruction")
    if isinstance(question, str) and question.strip():
        extra = row.get("input")
        content = f"{question}\n\n{extra}" if isinstance(extra, str) and extra.strip() else question
        return [{"role": "user", "content": content}]
    return None


def _turns_until_last_user(turns: list[Any]) -> list[dict[str, str]] | None:
    messages = []
    for turn in turns:
        if not isinstance(turn, dict):
            continue
        role = str(turn.get("role") or turn.get("from") or "")
        role = {"human": "user", "gpt": "assistant"}.get(role, role)
        content = turn.get("content") if "content" in turn else turn.get("value")
        if role in ("system", "user", "assistant") and isinstance(content, str):
            messages.append({"role": role, "content": content})
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    return messages[: last_user + 1] if last_user >= 0 else None


def _render(line: str | list[dict[str, str]], tokenizer: Any) -> str:
    if isinstance(line, str):
        return line
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(line, tokenize=False, add_generation_prompt=True)
        return str(rendered)
    # No chat template (a base model's fine-tune): lorag's completion prompt for base models.
    earlier = "".join(f"{'質問' if m['role'] == 'user' else '答え'}：{m['content']}\n"
                      for m in line[:-1] if m["role"] != "system")
    return f"{earlier}質問：{line[-1]['content']}\n答え："
