"""Document loaders: turn .txt .md .html .docx files into texts (PDF, images and ``load_document``: reader.py).

Usage::

    [page] = LOADERS[".docx"].load(Path("規程.docx"))
    print(normalize_text(page.text)[:40])
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Protocol

from lorag.errors import IngestError

# Encodings tried, in order, after strict UTF-8; CP932 is the superset of Shift_JIS that Windows writes.
JAPANESE_ENCODINGS = ("cp932", "euc_jp", "iso2022_jp")
GARBAGE_RATIO = 0.02  # more undecodable characters than this and a "text" file is treated as binary


@dataclass(frozen=True)
class Page:
    """The text of one page (PDF) or of a whole document (``number`` is None)."""

    number: int | None
    text: str
    label: str | None = None  # the printed page label (PDF /PageLabels), e.g. "30" or "xii"
    ocr: bool = False  # the text was read by OCR


class DocumentLoader(Protocol):
    """Reads one file format into pages of raw text (normalisation happens in ``load_document``)."""

    def load(self, path: Path) -> list[Page]:
        """Return the pages of ``path``; raise IngestError when it cannot be read."""
        ...


def decode_text(data: bytes, name: str) -> str:
    """Decode text bytes as UTF-8, CP932 (Shift_JIS), EUC-JP or ISO-2022-JP; reject binary data."""
    if b"\x00" in data[:65536]:
        raise IngestError(f"{name} looks like a binary file (it contains NUL bytes), not text.",
                          "If it is UTF-16 text, save it as UTF-8.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    candidates = [enc for enc in JAPANESE_ENCODINGS if _decodes(data, enc)]
    if len(candidates) == 1:
        return data.decode(candidates[0])
    best = _charset_guess(data, candidates)
    if best is not None:
        return best
    text = data.decode("cp932", errors="replace")
    if text.count("\ufffd") > GARBAGE_RATIO * max(len(text), 1):
        raise IngestError(f"{name} is not readable text (mostly undecodable bytes).",
                          "Save it as UTF-8 or Shift_JIS text, or remove it.")
    return text


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _charset_guess(data: bytes, candidates: list[str]) -> str | None:
    """Let charset-normalizer choose among the encodings that decode strictly (or any, if none did)."""
    from charset_normalizer import from_bytes

    match = from_bytes(data, cp_isolation=candidates or None).best()
    if match is None:
        return None
    if not candidates and match.chaos > 0.3:
        return None
    return str(match)


class TextLoader:
    """Plain text and Markdown in any of the supported encodings."""

    def load(self, path: Path) -> list[Page]:
        return [Page(None, decode_text(_read_bytes(path), path.name))]


class _TextExtractor(HTMLParser):
    """Collects visible text; block elements become line breaks so chunking sees the structure."""

    SKIP = frozenset({"script", "style", "noscript", "template", "svg"})
    BLOCKS = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
                        "footer", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "title",
                        "hr", "nav", "main", "aside", "figcaption"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skip_depth += 1
        elif tag in self.BLOCKS:
            self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in self.BLOCKS:
            self._break(tag)

    def _break(self, tag: str) -> None:
        """End the current line; headings and paragraphs also leave an empty line (a paragraph break)."""
        wanted = 2 if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "title") else 1
        tail = "".join(self.parts[-3:])
        have = len(tail) - len(tail.rstrip("\n"))
        if have < wanted:
            self.parts.append("\n" * (wanted - have))

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)

    def text(self) -> str:
        lines = [" ".join(line.split()) for line in "".join(self.parts).splitlines()]
        return _collapse_blank_lines("\n".join(lines))


class HtmlLoader:
    """HTML pages: tags, scripts and styles removed with the standard library's parser."""

    def load(self, path: Path) -> list[Page]:
        parser = _TextExtractor()
        parser.feed(decode_text(_read_bytes(path), path.name))
        parser.close()
        return [Page(None, parser.text())]


class DocxLoader:
    """Word .docx files: paragraphs and table cells, in document order of paragraphs then tables."""

    def load(self, path: Path) -> list[Page]:
        import docx

        try:
            document = docx.Document(str(path))
        except Exception as exc:  # python-docx raises zipfile/KeyError/PackageNotFoundError on bad files
            raise IngestError(f"{path.name} is not a readable .docx file ({type(exc).__name__}).",
                              "Check that it is a Word document saved as .docx, not .doc.") from exc
        parts = [p.text for p in document.paragraphs]
        for table in document.tables:
            for row in table.rows:
                parts.append(" | ".join(cell.text for cell in row.cells))
        return [Page(None, "\n".join(parts))]


LOADERS: dict[str, DocumentLoader] = {
    ".txt": TextLoader(),
    ".md": TextLoader(),
    ".markdown": TextLoader(),
    ".html": HtmlLoader(),
    ".htm": HtmlLoader(),
    ".docx": DocxLoader(),
}
PAGED_EXTENSIONS = (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff")  # read by lorag.rag.reader
SUPPORTED_EXTENSIONS = tuple(sorted((*LOADERS, *PAGED_EXTENSIONS)))


def check_file(path: Path, max_file_mb: float) -> int:
    """Check that ``path`` is an existing, non-empty, supported file within the size limit; return its size."""
    if not path.exists():
        raise IngestError(f"{path} does not exist.")
    if not path.is_file():
        raise IngestError(f"{path} is not a regular file.")
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise IngestError(f"{path.name}: unsupported extension {path.suffix or '(none)'!r}.",
                          f"Supported: {', '.join(SUPPORTED_EXTENSIONS)}.")
    size = path.stat().st_size
    if size == 0:
        raise IngestError(f"{path.name} is empty.")
    if size > max_file_mb * 1024 * 1024:
        raise IngestError(f"{path.name} is {size / 1024 / 1024:.1f} MB, over ingest.max_file_mb = {max_file_mb:g}.",
                          "Raise ingest.max_file_mb in lorag.yaml or split the file.")
    return size


def normalize_text(text: str) -> str:
    """NFKC-normalise (full-width ASCII, half-width kana) and unify line endings."""
    text = unicodedata.normalize("NFKC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return text.replace("\x00", "")


def _collapse_blank_lines(text: str) -> str:
    out: list[str] = []
    for line in text.split("\n"):
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror}.") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:120] if text else "no details"
