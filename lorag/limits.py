"""Input limits shared by every entry point (CLI, /api, /v1), so a question is refused the same way everywhere."""

from __future__ import annotations

MAX_QUESTION_CHARS = 4000  # one question or one user turn; longer text belongs in a document, not a question
MAX_COLLECTION_CHARS = 64
