"""A page that cannot be rendered for OCR is skipped with a warning naming it; the rest of the PDF is ingested."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lorag.config import Config, IngestSettings
from lorag.rag.ingest import ingest_paths
from lorag.rag.ocr import Ocr
from lorag.rag.reader import DocumentReader
from lorag.rag.store import Store
from tests.helpers.handmade_pdf import pages_pdf

needs_tesseract = pytest.mark.skipif(not Ocr().available(), reason="tesseract-ocr with jpn and jpn_vert not installed")
FIRST = "The first page has a text layer and reads fine."
LAST = "The last page has a text layer and reads fine too."
# 200,000 full-page fills and no text. Loading the page and its text layer costs ~1 us per fill, the grayscale
# render for OCR ~28 us per fill (here: 0.22 s and 5.8 s), so with a timeout of a few times the text's cost the
# render, not the text, runs into ingest.page_timeout_s on a machine of any speed (20,000 fills rendered in 0.6 s:
# a fixed 1 s timeout passed only on a busy machine).
HEAVY = b"0.5 g " + b"0 0 400 200 re f " * 200_000
FAILING_SIZE = b"0 0 300 300"  # the page size the patched renderer below refuses


def text_page(text: str) -> bytes:
    return b"BT /F1 10 Tf 10 100 Td (" + text.encode() + b") Tj ET"


def text_layer_seconds(pdf: Path, index: int) -> float:
    """What loading page ``index`` (0-based) and its text layer costs on this machine, now."""
    import time

    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    try:
        started = time.perf_counter()
        page = document[index]
        page.get_textpage().get_text_range()
        return time.perf_counter() - started
    finally:
        document.close()


@needs_tesseract
def test_a_page_too_slow_to_render_is_skipped_and_the_rest_is_read(tmp_path: Path) -> None:
    box = b"0 0 400 200"
    pdf = pages_pdf(tmp_path / "heavy.pdf", [(text_page(FIRST), box), (HEAVY, box), (text_page(LAST), box)])
    timeout = round(max(0.5, 6 * text_layer_seconds(pdf, 1)), 2)
    with DocumentReader(IngestSettings(page_timeout_s=timeout)) as reader:
        doc = reader.read(pdf)
    assert [(p.number, p.text) for p in doc.pages] == [(1, FIRST), (3, LAST)]
    assert doc.unreadable == [2] and doc.ocr_pages == []
    assert doc.warnings == [f"heavy.pdf: rendering page 2 for OCR took more than {timeout:g} s "
                            "(ingest.page_timeout_s); skipped."]
    assert doc.meta()["unreadable_pages"] == [2]


@pytest.fixture
def failing_renderer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PDFium's render call raising its own error for 300x300 pt pages, in the PDF worker process.

    PDFium renders every damaged page it has been given here (corrupt streams and images, empty, negative or
    giant boxes: it falls back to a default box or draws nothing), so the failure is injected where the worker
    imports pypdfium2, through a sitecustomize module on the worker's PYTHONPATH.
    """
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import pypdfium2\n"
        "_render = pypdfium2.PdfPage.render\n"
        "def render(self, *args, **kwargs):\n"
        "    if tuple(self.get_size()) == (300.0, 300.0):\n"
        "        raise pypdfium2.PdfiumError('Failed to render page')\n"
        "    return _render(self, *args, **kwargs)\n"
        "pypdfium2.PdfPage.render = render\n", encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", ":".join([str(site), *sys.path]))


@needs_tesseract
@pytest.mark.usefixtures("failing_renderer")
def test_a_page_that_fails_to_render_is_skipped_with_a_warning(tmp_path: Path) -> None:
    box = b"0 0 400 200"
    pdf = pages_pdf(tmp_path / "broken.pdf", [(text_page(FIRST), box), (b"", FAILING_SIZE), (text_page(LAST), box)])
    with DocumentReader(IngestSettings()) as reader:
        doc = reader.read(pdf)
    assert [(p.number, p.text) for p in doc.pages] == [(1, FIRST), (3, LAST)]
    assert doc.unreadable == [2]
    assert doc.warnings == ["broken.pdf: page 2 could not be rendered for OCR (Failed to render page); skipped."]


@needs_tesseract
@pytest.mark.usefixtures("failing_renderer")
def test_ingest_keeps_the_pages_around_a_render_failure(rag_config: Config, tmp_path: Path) -> None:
    box = b"0 0 400 200"
    pdf = pages_pdf(tmp_path / "broken.pdf", [(text_page(FIRST), box), (b"", FAILING_SIZE), (text_page(LAST), box)])
    report = ingest_paths(rag_config, [pdf])
    assert report.added == [str(pdf)] and report.failed == []
    assert any("page 2 could not be rendered for OCR" in w for w in report.warnings)
    with Store(rag_config.store_path) as store:
        [document] = store.list_documents()
        texts = [c.text for c in store.document_chunks(document.id)]
        assert texts == [FIRST, LAST] or texts == [f"{FIRST}\n{LAST}"]
