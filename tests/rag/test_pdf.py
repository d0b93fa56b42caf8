"""PDF reading through PDFium in its worker: labels, front matter, running headers, slow pages, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorag.config import IngestSettings
from lorag.errors import IngestError
from lorag.rag.pdf import PdfReader
from lorag.rag.reader import DocumentReader, label_ranges
from tests.helpers.handmade_pdf import pages_pdf
from tests.rag.documents import ipaex_font, make_encrypted_pdf

BODY = "有給休暇は入社6か月後に10日付与されます。申請は2週間前までに上長へ提出してください。"
CONTENTS = ["目次", "1 はじめに . . . . . . . . . . . . . . 1", "2 休暇 . . . . . . . . . . . . . . . . 2",
            "3 食堂 . . . . . . . . . . . . . . . . 3", "4 経費 . . . . . . . . . . . . . . . . 4"]


def make_manual(path: Path) -> Path:
    """A Japanese PDF like a real manual: title page, contents (roman labels), body from printed page 1,
    a running header on every page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("ipaexg", fname=str(ipaex_font()))
    pdf.set_font("ipaexg", size=11)
    for n, lines in enumerate((["社内規程集"], CONTENTS)):
        pdf.add_page()
        if n == 0:
            pdf.set_page_label(label_style="r")  # i, ii, ...
        pdf.multi_cell(0, 7, "社内規程集 ハンドブック\n" + "\n".join(lines))
    bodies = (BODY, "社員食堂は11時30分から14時まで営業しています。", "経費は翌月10日までに申請します。")
    for n, text in enumerate(bodies, start=1):
        pdf.add_page()
        if n == 1:
            pdf.set_page_label(label_style="D", label_start=1)
        pdf.multi_cell(0, 7, f"社内規程集 ハンドブック {n}\n{text}")
    pdf.output(str(path))
    return path


def slow_pdf(path: Path, operations: int) -> Path:
    """A valid one-page PDF whose content stream holds ``operations`` text draws (slow to extract)."""
    return raw_pdf(path, b"BT /F1 1 Tf " + b"1 0 0 1 10 10 Tm (a) Tj " * operations + b"ET")


def raw_pdf(path: Path, content: bytes, mediabox: bytes = b"0 0 200 200") -> Path:
    """A one-page PDF written by hand: ``content`` as its (compressed) content stream."""
    return pages_pdf(path, [(content, mediabox)])


def test_pages_labels_front_matter_and_headers(tmp_path: Path) -> None:
    with DocumentReader(IngestSettings(ocr="off")) as reader:
        doc = reader.read(make_manual(tmp_path / "manual.pdf"))
    assert [(p.number, p.label) for p in doc.pages] == [(1, "i"), (3, "1"), (4, "2"), (5, "3")]
    assert doc.pages[1].text == BODY  # running header gone, lines rejoined
    assert doc.front_matter == {"contents": [2]} and doc.front_matter_skipped
    assert doc.meta() == {"pages": 5, "page_labels": [[1, 2, "i", "ii"], [3, 5, "1", "3"]],
                          "front_matter": {"contents": [2]}, "front_matter_skipped": True}


def test_front_matter_kept_when_skip_toc_is_off(tmp_path: Path) -> None:
    with DocumentReader(IngestSettings(ocr="off", skip_toc=False)) as reader:
        doc = reader.read(make_manual(tmp_path / "manual.pdf"))
    assert [p.number for p in doc.pages] == [1, 2, 3, 4, 5]
    assert doc.front_matter == {"contents": [2]} and not doc.front_matter_skipped


def test_label_ranges() -> None:
    labels = {2: "i", 3: "ii", 4: "iii", 5: "1", 6: "2", 9: "A-1"}
    assert label_ranges(labels) == [[2, 4, "i", "iii"], [5, 6, "1", "2"], [9, 9, "A-1", "A-1"]]


def test_a_page_that_hangs_is_skipped_with_a_warning(tmp_path: Path) -> None:
    pdf = slow_pdf(tmp_path / "slow.pdf", 400_000)
    with PdfReader(page_timeout_s=0.2) as reader:
        doc = reader.read(pdf)
    assert [(p.number, p.text, p.error) for p in doc.pages] == [(1, "", "timeout")]
    assert doc.warnings == ["slow.pdf: page 1 took more than 0.2 s (ingest.page_timeout_s); skipped."]


def test_after_a_timeout_the_next_document_reads(tmp_path: Path) -> None:
    with PdfReader(page_timeout_s=0.2) as reader:
        reader.read(slow_pdf(tmp_path / "slow.pdf", 400_000))
        doc = reader.read(make_manual(tmp_path / "manual.pdf"))
    assert len(doc.pages) == 5 and not doc.warnings and "有給休暇" in doc.pages[2].text


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    with DocumentReader() as reader, pytest.raises(IngestError, match=r"secret\.pdf is an encrypted PDF"):
        reader.read(make_encrypted_pdf(tmp_path / "secret.pdf"))


def test_damaged_pdf_is_refused(tmp_path: Path) -> None:
    data = make_manual(tmp_path / "manual.pdf").read_bytes()
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(data[: len(data) // 3])
    with DocumentReader() as reader, pytest.raises(IngestError, match=r"broken\.pdf is not a readable PDF"):
        reader.read(broken)


def test_english_words_keep_their_spaces(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, "Choose packages listed on the command line and install them with apt. " * 6)
    pdf.output(str(tmp_path / "en.pdf"))
    with DocumentReader() as reader:
        [page] = reader.read(tmp_path / "en.pdf").pages
    assert page.text == ("Choose packages listed on the command line and install them with apt. " * 6).strip()

