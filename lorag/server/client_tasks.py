"""Recognise a chat client's own background requests (titles, tags, follow-ups, search queries) by their shape.

Open WebUI sends these to the same model the user chats with, as one user message built from its task prompt
templates (backend/open_webui/config.py, ``DEFAULT_*_PROMPT_TEMPLATE``): they open with ``### Task:`` and
wrap the conversation in ``<chat_history>…</chat_history>``, and ask for a JSON object such as
``{ "title": … }``, ``{ "tags": […] }``, ``{ "follow_ups": […] }`` or ``{ "queries": […] }``. Older
versions used plain-text title prompts ("Create a concise, 3-5 word title …"). These are not questions about
the documents: they run on the plain model, without retrieval, behind the users' questions.

Usage::

    client_task([{"role": "user", "content": "### Task:\\nGenerate a concise ... <chat_history>..."}])  # "title"
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

# The JSON key each task asks for, in the order they are checked.
_KINDS = (("follow_ups", '"follow_ups"'), ("queries", '"queries"'), ("tags", '"tags"'), ("title", '"title"'),
          ("emoji", "emoji"), ("autocomplete", "autocompletion"))
_LEGACY_TITLE = re.compile(r"create a concise, 3-5 word (?:title|phrase)", re.IGNORECASE)
_METADATA_TASKS = {"title_generation": "title", "tags_generation": "tags", "follow_up_generation": "follow_ups",
                   "query_generation": "queries", "emoji_generation": "emoji",
                   "autocomplete_generation": "autocomplete"}


def client_task(messages: Sequence[Mapping[str, Any]], metadata: Mapping[str, Any] | None = None) -> str | None:
    """The kind of background task a request is ("title", "tags", "follow_ups", "queries", …), or None."""
    if metadata and isinstance(metadata.get("task"), str):
        kind = _METADATA_TASKS.get(metadata["task"])
        if kind:
            return kind
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    text = _text(last.get("content")) if last is not None else ""
    if _LEGACY_TITLE.search(text):
        return "title"
    if not text.lstrip().startswith("### Task:"):
        return None
    instructions = text.split("<chat_history>", 1)[0]
    for kind, marker in _KINDS:
        if marker in instructions:
            return kind
    return "task"


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return content if isinstance(content, str) else ""
