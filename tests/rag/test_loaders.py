"""Loaders: every format, every encoding, and a clear IngestError for every kind of bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lorag.errors import IngestError
from lorag.rag.loaders import decode_text
from lorag.rag.reader import load_document
from tests.rag.documents import JA_TEXT, JA_TEXT_2, make_docx, make_encrypted_pdf, make_html, make_pdf


def test_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text(JA_TEXT, encoding="utf-8")
    [page] = load_document(path)
    assert page.number is None
    assert page.text == JA_TEXT


@pytest.mark.parametrize("encoding", ["shift_jis", "cp932", "euc_jp", "utf-8-sig"])
def test_japanese_encodings(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / f"{encoding}.txt"
    text = "駐車場の利用には総務部の許可が必要です。①は機種依存文字。" if encoding == "cp932" else JA_TEXT
    path.write_bytes(text.encode(encoding))
    [page] = load_document(path)
    assert page.text == text.replace("①", "1")  # NFKC turns ① into 1


def test_nfkc_normalises_fullwidth_and_halfwidth(tmp_path: Path) -> None:
    path = tmp_path / "n.md"
    path.write_text("ＡＢＣ１２３ ｶﾀｶﾅ\r\n次の行", encoding="utf-8")
    assert load_document(path)[0].text == "ABC123 カタカナ\n次の行"


def test_markdown_keeps_headings(tmp_path: Path) -> None:
    path = tmp_path / "m.md"
    path.write_text("# 見出し\n\n本文です。\n", encoding="utf-8")
    assert load_document(path)[0].text == "# 見出し\n\n本文です。\n"


def test_html_strips_tags_scripts_and_styles(tmp_path: Path) -> None:
    [page] = load_document(make_html(tmp_path / "p.html", "人間ドック&amp;健康診断"))
    assert page.text == "案内\n\n福利厚生\n\n人間ドック&健康診断\n\n項目A\n項目B"
    assert "secret" not in page.text and "color" not in page.text


def test_japanese_pdf_keeps_page_numbers(tmp_path: Path) -> None:
    pages = load_document(make_pdf(tmp_path / "j.pdf", [JA_TEXT, JA_TEXT_2]))
    assert [p.number for p in pages] == [1, 2]
    assert "".join(pages[0].text.split()) == JA_TEXT
    assert "".join(pages[1].text.split()) == JA_TEXT_2


def test_docx_paragraphs_and_tables(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "d.docx", [JA_TEXT, JA_TEXT_2], table=[["項目", "金額"], ["日当", "2,000円"]])
    [page] = load_document(path)
    assert page.text == f"{JA_TEXT}\n{JA_TEXT_2}\n項目 | 金額\n日当 | 2,000円"


def bad(path: Path, match: str, **kw: float) -> None:
    with pytest.raises(IngestError, match=match) as info:
        load_document(path, **kw)
    assert "\n" not in str(info.value)  # one line for the CLI


def test_nonexistent_path(tmp_path: Path) -> None:
    bad(tmp_path / "missing.txt", r"missing\.txt does not exist\.")


def test_unsupported_extension(tmp_path: Path) -> None:
    (tmp_path / "x.xlsx").write_bytes(b"PK\x03\x04")
    bad(tmp_path / "x.xlsx", r"x\.xlsx: unsupported extension '\.xlsx'\. Supported: \.docx, \.htm, \.html")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.txt").write_bytes(b"")
    bad(tmp_path / "e.txt", r"^e\.txt is empty\.$")


def test_whitespace_only_file(tmp_path: Path) -> None:
    (tmp_path / "w.md").write_text(" \n\n\t\n", encoding="utf-8")
    bad(tmp_path / "w.md", r"^w\.md contains no text\.$")


def test_binary_garbage_named_txt(tmp_path: Path) -> None:
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2000))
    bad(tmp_path / "image.txt", r"image\.txt looks like a binary file \(it contains NUL bytes\)")


def test_undecodable_bytes_without_nul(tmp_path: Path) -> None:
    data = bytes(b for b in os.urandom(6000) if b >= 0x80)[:3000]
    with pytest.raises(IngestError, match="not readable text"):
        decode_text(data, "noise.txt")


def test_corrupt_pdf(tmp_path: Path) -> None:
    good = make_pdf(tmp_path / "good.pdf", [JA_TEXT]).read_bytes()
    (tmp_path / "broken.pdf").write_bytes(good[: len(good) // 3])
    bad(tmp_path / "broken.pdf", r"broken\.pdf (is not a readable PDF|contains no text)")
    (tmp_path / "fake.pdf").write_text("this is not a pdf at all", encoding="utf-8")
    bad(tmp_path / "fake.pdf", r"fake\.pdf is not a readable PDF")


def test_encrypted_pdf(tmp_path: Path) -> None:
    bad(make_encrypted_pdf(tmp_path / "locked.pdf"), r"locked\.pdf is an encrypted PDF\. Remove the password")


def test_corrupt_docx(tmp_path: Path) -> None:
    (tmp_path / "bad.docx").write_bytes(b"PK\x03\x04 not really a zip")
    bad(tmp_path / "bad.docx", r"bad\.docx is not a readable \.docx file")


def test_file_over_size_limit(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("あ" * 400_000, encoding="utf-8")  # 1.2 MB
    bad(tmp_path / "big.txt", r"big\.txt is 1\.1 MB, over ingest\.max_file_mb = 1\.", max_file_mb=1)
