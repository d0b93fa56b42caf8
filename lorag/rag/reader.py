"""Read one document into clean page texts: PDF (PDFium, OCR for scans), images (OCR), text, HTML, .docx.

Front matter (contents, lists of tables, index) is detected and, with ``ingest.skip_toc``, left out of the
pages to index; the document's metadata still lists those pages, and which pages were OCRed.

Usage::

    with DocumentReader(config.settings.ingest) as reader:
        doc = reader.read(Path("manual.pdf"))
        print(doc.meta(), [p.number for p in doc.pages])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorag.config import IngestSettings
from lorag.errors import IngestError
from lorag.rag.frontmatter import matter_kind
from lorag.rag.loaders import LOADERS, Page, check_file, normalize_text
from lorag.rag.ocr import IMAGE_EXTENSIONS, Ocr, OcrPool, ocr_workers, open_image
from lorag.rag.pagetext import clean_page_text, drop_running_headers
from lorag.rag.pdf import PdfDocument, PdfPage, PdfReader

MARKDOWN_EXTENSIONS = (".md", ".markdown")


@dataclass
class LoadedDocument:
    """The pages to index plus what the reader learned about the whole document."""

    pages: list[Page]
    markdown: bool = False
    page_count: int = 0
    labels: dict[int, str] = field(default_factory=dict)  # PDF page index -> printed label, where they differ
    ocr_pages: list[int] = field(default_factory=list)
    front_matter: dict[str, list[int]] = field(default_factory=dict)  # "contents"/"index" -> PDF pages
    front_matter_skipped: bool = False
    unreadable: list[int] = field(default_factory=list)  # pages skipped after a timeout or failure
    warnings: list[str] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        """The JSON-able document metadata stored with it."""
        data: dict[str, Any] = {"pages": self.page_count}
        if self.labels:
            data["page_labels"] = label_ranges(self.labels)
        if self.ocr_pages:
            data["ocr_pages"] = self.ocr_pages
        if self.front_matter:
            data["front_matter"] = self.front_matter
            data["front_matter_skipped"] = self.front_matter_skipped
        if self.unreadable:
            data["unreadable_pages"] = self.unreadable
        return data


class DocumentReader:
    """Reads files with one PDF worker and one OCR engine kept for a whole ingest run."""

    def __init__(self, settings: IngestSettings | None = None) -> None:
        self.settings = settings or IngestSettings()
        self._pdf: PdfReader | None = None
        self._ocr = Ocr(self.settings.ocr_languages, self.settings.ocr_timeout_s)
        self._ocr_missing: str | None = None
        self.notices: list[str] = []  # run-wide warnings (said once), e.g. that Tesseract is missing

    def __enter__(self) -> DocumentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None

    @property
    def max_pixels(self) -> int:
        return int(self.settings.max_image_megapixels * 1_000_000)

    def read(self, path: Path) -> LoadedDocument:
        """The pages of ``path`` to index; IngestError when the file cannot be read or holds no text."""
        check_file(path, self.settings.max_file_mb)
        suffix = path.suffix.lower()
        if suffix == ".pdf":
            doc = self._read_pdf(path)
        elif suffix in IMAGE_EXTENSIONS:
            doc = self._read_image(path)
        else:
            pages = [Page(p.number, normalize_text(p.text)) for p in LOADERS[suffix].load(path)]
            doc = LoadedDocument(pages, markdown=suffix in MARKDOWN_EXTENSIONS, page_count=len(pages))
        doc.pages = [p for p in doc.pages if p.text.strip()]
        if not doc.pages and not doc.front_matter:
            raise IngestError(f"{path.name} contains no text.", self._no_text_hint(suffix))
        return doc

    def _no_text_hint(self, suffix: str) -> str:
        if suffix not in (".pdf", *IMAGE_EXTENSIONS):
            return ""
        if self.settings.ocr == "off":
            return "It looks scanned: set ingest.ocr to auto to read it with Tesseract."
        return self._ocr_missing or ""

    # -- OCR --------------------------------------------------------------------------------------
    def _ocr_ready(self) -> bool:
        if self.settings.ocr == "off":
            return False
        if self._ocr_missing is None:
            self._ocr_missing = self._ocr.missing()
        return not self._ocr_missing

    def _say_ocr_missing(self, what: str) -> None:
        notice = f"{self._ocr_missing} Without it, {what} are not read (OCR)."
        if notice not in self.notices:
            self.notices.append(notice)

    # -- images -----------------------------------------------------------------------------------
    def _read_image(self, path: Path) -> LoadedDocument:
        doc = LoadedDocument([], page_count=1)
        if not self._ocr_ready():
            if self.settings.ocr == "off":
                raise IngestError(f"{path.name} is an image and ingest.ocr is off.",
                                  "Set ingest.ocr to auto to read images with Tesseract.")
            self._say_ocr_missing("image files")
            raise IngestError(f"{path.name} is an image and needs OCR: {self._ocr_missing}")
        image, warning = open_image(path, self.max_pixels)
        if warning:
            doc.warnings.append(warning)
        text = self._ocr.image_text(image, path.name)
        doc.pages = [Page(None, normalize_text(clean_page_text(normalize_text(text), ocr=True)), ocr=True)]
        doc.ocr_pages = [1]
        return doc

    # -- PDF --------------------------------------------------------------------------------------
    def _read_pdf(self, path: Path) -> LoadedDocument:
        if self._pdf is None:
            self._pdf = PdfReader(self.settings.page_timeout_s, self.max_pixels)
        mode = self.settings.ocr
        ocr_ready = self._ocr_ready()

        def wants_render(page: PdfPage) -> bool:
            return ocr_ready and (mode == "always" or page.needs_ocr)

        with OcrPool(self._ocr, ocr_workers(self.settings.ocr_workers)) as pool:
            def ocr_later(page: PdfPage) -> None:  # OCR runs while the next pages are read and rendered
                pool.submit(page.number, page.image, f"{path.name} page {page.number}")
                page.image = None

            raw = self._pdf.read(path, render=wants_render, rendered=ocr_later)
            ocr_texts = pool.results()
        doc = LoadedDocument([], page_count=len(raw.pages), warnings=list(raw.warnings))
        doc.labels = {p.number: p.label for p in raw.pages if p.label and p.label != str(p.number)}
        scanned = [p.number for p in raw.pages if p.needs_ocr and not p.error]
        if scanned and not ocr_ready and mode != "off":
            self._say_ocr_missing("pages without a text layer")
        texts = self._page_texts(raw, doc, ocr_texts)
        self._keep_pages(raw, texts, doc)
        return doc

    def _page_texts(self, raw: PdfDocument, doc: LoadedDocument,
                    ocr_texts: dict[int, str | IngestError]) -> dict[int, tuple[str, bool]]:
        """Page index -> (text, was OCRed): the text layer, running headers removed, or the OCR result."""
        layer = drop_running_headers([normalize_text(p.text) for p in raw.pages])
        texts: dict[int, tuple[str, bool]] = {}
        for page, text in zip(raw.pages, layer, strict=True):
            result = ocr_texts.get(page.number)
            if page.error or isinstance(result, IngestError):
                if isinstance(result, IngestError):
                    doc.warnings.append(str(result))
                doc.unreadable.append(page.number)
            elif result is not None:
                doc.ocr_pages.append(page.number)
                texts[page.number] = (normalize_text(result), True)
            else:
                texts[page.number] = (text, False)
        return texts

    def _keep_pages(self, raw: PdfDocument, texts: dict[int, tuple[str, bool]], doc: LoadedDocument) -> None:
        for page in raw.pages:
            if page.number not in texts:
                continue
            text, ocred = texts[page.number]
            kind = matter_kind(text)
            if kind is not None:
                doc.front_matter.setdefault(kind, []).append(page.number)
                if self.settings.skip_toc:
                    continue
            cleaned = clean_page_text(text, ocr=ocred)
            doc.pages.append(Page(page.number, cleaned, label=page.label, ocr=ocred))
        doc.front_matter_skipped = bool(doc.front_matter) and self.settings.skip_toc


def label_ranges(labels: dict[int, str]) -> list[list[Any]]:
    """Printed page labels as runs ``[first page, last page, first label, last label]``, not one per page."""
    runs: list[list[Any]] = []
    for number in sorted(labels):
        label = labels[number]
        if runs and runs[-1][1] == number - 1 and _follows(runs[-1][3], label):
            runs[-1][1], runs[-1][3] = number, label
        else:
            runs.append([number, number, label, label])
    return runs


def _follows(previous: str, label: str) -> bool:
    a, b = _label_value(previous), _label_value(label)
    return a is not None and b is not None and b == a + 1


def _label_value(label: str) -> int | None:
    if label.isdigit():
        return int(label)
    values = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100, "d": 500, "m": 1000}
    lowered = label.lower()
    if not lowered or any(ch not in values for ch in lowered):
        return None
    total = 0
    for ch, nxt in zip(lowered, [*lowered[1:], ""], strict=True):
        value = values[ch]
        total += -value if nxt and values[nxt] > value else value
    return total


def load_document(path: Path, max_file_mb: float = 50.0) -> list[Page]:
    """Read ``path`` with the default ingest settings; return its NFKC-normalised pages that have text."""
    with DocumentReader(IngestSettings(max_file_mb=max_file_mb)) as reader:
        return reader.read(path).pages
