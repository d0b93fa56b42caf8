"""The sample corpus is complete, parseable in every format, and answers every sample question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CORPUS = EXAMPLES / "corpus"


def _document_text(path: Path) -> str:
    """Extract text with the plain parsers lorag relies on (pypdf, python-docx, Shift_JIS)."""
    if path.suffix == ".pdf":
        from pypdf import PdfReader

        return "".join(page.extract_text() or "" for page in PdfReader(path).pages)
    if path.suffix == ".docx":
        from docx import Document

        return "\n".join(p.text for p in Document(str(path)).paragraphs)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("shift_jis")


def test_corpus_covers_every_format() -> None:
    suffixes = sorted(p.suffix for p in CORPUS.iterdir())
    assert len(suffixes) == 10
    assert set(suffixes) == {".md", ".txt", ".html", ".pdf", ".docx"}
    sjis = CORPUS / "セキュリティポリシー.txt"
    with pytest.raises(UnicodeDecodeError):
        sjis.read_bytes().decode("utf-8")


@pytest.mark.parametrize("path", sorted(CORPUS.iterdir()), ids=lambda p: p.name)
def test_document_length_is_short_but_real(path: Path) -> None:
    text = _document_text(path)
    assert "株式会社さくらテック" in text
    assert 600 <= len(text) <= 4000


def test_every_question_has_its_answer_in_its_source() -> None:
    questions = json.loads((EXAMPLES / "questions.json").read_text(encoding="utf-8"))
    assert len(questions) >= 15
    for item in questions:
        text = _document_text(CORPUS / item["source"]).replace("\n", "")
        assert item["answer"] in text, item
