"""OCR with the real Tesseract: an image-only Japanese PDF, image files, huge images, Tesseract missing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from lorag.config import Config, IngestSettings, load_config, update_config
from lorag.errors import IngestError
from lorag.rag.ingest import ingest_paths
from lorag.rag.ocr import Ocr
from lorag.rag.reader import DocumentReader
from lorag.rag.store import Store
from tests.rag.documents import ipaex_font

SENTENCE = "有給休暇は入社六か月後に十日付与されます。"
SENTENCE_2 = "申請は二週間前までに上長へ提出してください。"

needs_tesseract = pytest.mark.skipif(not Ocr().available(), reason="tesseract-ocr with jpn and jpn_vert not installed")


def render(lines: list[str], size: tuple[int, int] = (1654, 2339)) -> Any:
    """A white A4 page at 200 dpi with ``lines`` of black Japanese text in IPAex Gothic."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(ipaex_font()), 44)
    for i, line in enumerate(lines):
        draw.text((120, 160 + i * 90), line, fill=0, font=font)
    return image


def scanned_pdf(path: Path, pages: list[list[str]]) -> Path:
    """An image-only PDF (no text layer), one rendered page per entry."""
    images = [render(lines).convert("RGB") for lines in pages]
    images[0].save(path, save_all=True, append_images=images[1:], resolution=200.0)
    return path


@needs_tesseract
def test_scanned_pdf_is_read_by_ocr(tmp_path: Path) -> None:
    pdf = scanned_pdf(tmp_path / "scan.pdf", [[SENTENCE, SENTENCE_2]])
    with DocumentReader(IngestSettings()) as reader:
        doc = reader.read(pdf)
    assert doc.ocr_pages == [1]
    [page] = doc.pages
    assert page.ocr and SENTENCE in page.text and SENTENCE_2 in page.text


@needs_tesseract
def test_image_file_is_read_by_ocr(tmp_path: Path) -> None:
    render([SENTENCE]).save(tmp_path / "memo.png")
    with DocumentReader(IngestSettings()) as reader:
        doc = reader.read(tmp_path / "memo.png")
    assert doc.ocr_pages == [1] and SENTENCE in doc.pages[0].text


@needs_tesseract
def test_a_100_megapixel_image_is_scaled_down_and_read(tmp_path: Path) -> None:
    from PIL import Image

    big = Image.new("L", (10_000, 10_000), 255)
    big.paste(render([SENTENCE], size=(2400, 400)).resize((4800, 800)), (200, 200))
    big.save(tmp_path / "poster.png")
    with DocumentReader(IngestSettings(max_image_megapixels=25)) as reader:
        doc = reader.read(tmp_path / "poster.png")
    assert doc.warnings == ["poster.png: 10000x10000 pixels is over ingest.max_image_megapixels; scaled to "
                            "5000x5000 for OCR."]
    assert SENTENCE in doc.pages[0].text


def test_a_decompression_bomb_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("1", (30_000, 30_000), 1).save(tmp_path / "bomb.png")
    with DocumentReader(IngestSettings(max_image_megapixels=10)) as reader, \
            pytest.raises(IngestError, match=r"bomb\.png is 30000x30000 pixels \(900 megapixels\), too large to OCR"):
        reader.read(tmp_path / "bomb.png")


def test_missing_tesseract_says_how_to_install_and_carries_on(rag_config: Config, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    scanned_pdf(docs / "scan.pdf", [[SENTENCE]])
    (docs / "memo.txt").write_text(SENTENCE_2 + "\n", encoding="utf-8")
    bin_dir = tmp_path / "bin"  # a PATH with python but no tesseract
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    report = ingest_paths(rag_config, [docs])
    assert report.added == [str(docs / "memo.txt")]
    assert [(Path(p).name, reason) for p, reason in report.failed] == [
        ("scan.pdf", "scan.pdf contains no text. tesseract is not installed. Install it: apt-get install "
                     "tesseract-ocr tesseract-ocr-jpn tesseract-ocr-jpn-vert")]
    assert report.notices == ["tesseract is not installed. Install it: apt-get install tesseract-ocr "
                              "tesseract-ocr-jpn tesseract-ocr-jpn-vert Without it, pages without a text layer are "
                              "not read (OCR)."]


def test_ocr_off_leaves_scans_alone(config_file: Path, tmp_path: Path) -> None:
    config = update_config(config_file, {"ingest.ocr": "off"})
    pdf = scanned_pdf(tmp_path / "scan.pdf", [[SENTENCE]])
    report = ingest_paths(load_config(config.path), [pdf])
    assert [r for _, r in report.failed] == [
        "scan.pdf contains no text. It looks scanned: set ingest.ocr to auto to read it with Tesseract."]


@needs_tesseract
def test_ingest_stores_ocr_pages_in_the_document_meta(rag_config: Config, tmp_path: Path) -> None:
    pdf = scanned_pdf(tmp_path / "scan.pdf", [[SENTENCE], [SENTENCE_2]])
    report = ingest_paths(rag_config, [pdf])
    assert report.ocr_pages == {str(pdf): [1, 2]}
    with Store(rag_config.store_path) as store:
        [doc] = store.list_documents()
    assert doc.meta["ocr_pages"] == [1, 2] and doc.meta["pages"] == 2


def test_tesseract_on_path_is_found() -> None:
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract not installed")
    assert Ocr("jpn+jpn_vert").missing() == ""
    assert Ocr("jpn+xx_none").missing().startswith("Tesseract has no xx_none language data.")


@needs_tesseract
def test_pages_are_ocred_in_parallel_and_kept_in_order(tmp_path: Path) -> None:
    from lorag.rag.ocr import OcrPool, ocr_workers

    pdf = scanned_pdf(tmp_path / "scan.pdf", [[SENTENCE], [SENTENCE_2], [SENTENCE]])
    with DocumentReader(IngestSettings(ocr_workers=2)) as reader:
        doc = reader.read(pdf)
    assert doc.ocr_pages == [1, 2, 3] and [p.number for p in doc.pages] == [1, 2, 3]
    assert [SENTENCE in doc.pages[0].text, SENTENCE_2 in doc.pages[1].text, SENTENCE in doc.pages[2].text] == [True] * 3
    assert ocr_workers(3) == 3 and 1 <= ocr_workers(0) <= 4
    with OcrPool(Ocr(timeout_s=0.001), workers=2) as pool:  # a failure is that page's result, not the pool's
        pool.submit(7, render([SENTENCE]), "scan.pdf page 7")
        [(key, error)] = pool.results().items()
    assert key == 7 and isinstance(error, IngestError) and "OCR of scan.pdf page 7 took more than" in str(error)
