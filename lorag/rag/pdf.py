"""PDF pages through PDFium (pypdfium2), in a worker process so one page that hangs cannot stall an ingest.

pypdfium2 keeps the spaces between English words that pypdf drops (measured in bench/ingest.py), reads the
printed page labels (/PageLabels) and renders pages for OCR. A page that takes longer than ``page_timeout_s``
is skipped with a warning naming it; the worker is restarted for the rest of the document.

Usage::

    with PdfReader(page_timeout_s=30) as reader:
        doc = reader.read(Path("manual.pdf"), render=lambda page: page.needs_ocr)
        for page in doc.pages:
            print(page.number, page.label, page.text[:40])
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from lorag.errors import IngestError

log = logging.getLogger(__name__)
RENDER_DPI = 300
MIN_TEXT_CHARS = 10  # fewer characters than this and a page counts as having no text layer
STARTUP_TIMEOUT_S = 60.0
BLANK_LEVEL = 160  # a rendered page with no pixel darker than this (0 black, 255 white) is blank


@dataclass
class PdfPage:
    """One PDF page: its 1-based index, printed label, text layer and (when asked for) a rendered image."""

    number: int
    label: str | None
    text: str
    image: Any = None  # a PIL image of the page when rendering was requested
    error: str = ""  # why the page has no text or image (timeout, render failure)

    @property
    def needs_ocr(self) -> bool:
        return len("".join(self.text.split())) < MIN_TEXT_CHARS


@dataclass
class PdfDocument:
    """The pages of one PDF plus the warnings collected while reading it."""

    pages: list[PdfPage]
    warnings: list[str] = field(default_factory=list)


class PdfReader:
    """Reads PDFs page by page in a child process, with a per-page time limit."""

    def __init__(self, page_timeout_s: float = 30.0, max_pixels: int = 40_000_000) -> None:
        self.page_timeout_s = page_timeout_s
        self.max_pixels = max_pixels
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None  # replies from the worker
        self._requests: Connection | None = None
        self._open_path: Path | None = None

    def __enter__(self) -> PdfReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker process."""
        if self._requests is not None:
            with contextlib.suppress(OSError):
                self._requests.send(("quit",))
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=2)
        self._stop_worker()
        self._open_path = None

    def read(self, path: Path, render: Callable[[PdfPage], bool] | None = None,
             rendered: Callable[[PdfPage], None] | None = None) -> PdfDocument:
        """Every page of ``path``; pages for which ``render(page)`` is true also get a rendered image, handed to
        ``rendered(page)`` as soon as it is made (which may take it: set ``page.image`` to None)."""
        labels = self._open(path)
        doc = PdfDocument([])
        for number, label in enumerate(labels, start=1):
            page = self._page(path, number, label, doc)
            if render is not None and not page.error and render(page):
                self._render(path, page, doc)
                if rendered is not None and page.image is not None:
                    rendered(page)
            doc.pages.append(page)
        return doc

    def _page(self, path: Path, number: int, label: str | None, doc: PdfDocument) -> PdfPage:
        reply = self._ask(path, ("text", number - 1), f"page {number}", doc)
        if reply is None:
            return PdfPage(number, label, "", error="timeout")
        status, value = reply
        if status != "ok":
            doc.warnings.append(f"{path.name}: page {number} has no readable text ({value}); skipped.")
            return PdfPage(number, label, "", error=str(value))
        return PdfPage(number, label, str(value))

    def _render(self, path: Path, page: PdfPage, doc: PdfDocument) -> None:
        reply = self._ask(path, ("render", page.number - 1, RENDER_DPI, self.max_pixels),
                          f"rendering page {page.number} for OCR", doc)
        if reply is None:
            page.error = "render timeout"
            return
        status, value = reply
        if status != "ok":
            page.error = f"render failed: {value}"
            doc.warnings.append(f"{path.name}: page {page.number} could not be rendered for OCR ({value}); skipped.")
            return
        from PIL import Image

        mode, size, data = value
        image = Image.frombytes(mode, size, data)
        low = image.getextrema()[0]
        if isinstance(low, (int, float)) and low < BLANK_LEVEL:  # a blank page has nothing to read: no OCR
            page.image = image

    def _open(self, path: Path) -> list[str | None]:
        self._ensure_worker()
        assert self._conn is not None
        self._send(("open", str(path)))
        if not self._conn.poll(STARTUP_TIMEOUT_S):
            self._restart()
            raise IngestError(f"{path.name}: the PDF could not be opened within {STARTUP_TIMEOUT_S:.0f} s.",
                              "Check that the file is a complete PDF.")
        try:
            status, value = self._conn.recv()
        except EOFError:
            self._restart()
            status, value = "error", "the PDF reader crashed on it"
        if status == "encrypted":
            raise IngestError(f"{path.name} is an encrypted PDF.", "Remove the password and ingest it again.")
        if status != "ok":
            raise IngestError(f"{path.name} is not a readable PDF ({value}).",
                              "Check that the file is complete and not damaged.")
        self._open_path = path
        return list(value)

    def _ask(self, path: Path, request: tuple[Any, ...], what: str, doc: PdfDocument) -> tuple[str, Any] | None:
        """Send ``request``; on timeout kill the worker, warn, reopen the document and return None."""
        assert self._conn is not None
        self._send(request)
        if self._conn.poll(self.page_timeout_s):
            try:
                return tuple(self._conn.recv())  # type: ignore[return-value]
            except EOFError:
                doc.warnings.append(f"{path.name}: {what} crashed the PDF reader; skipped.")
        else:
            doc.warnings.append(f"{path.name}: {what} took more than {self.page_timeout_s:g} s "
                                "(ingest.page_timeout_s); skipped.")
        self._restart()
        self._open(path)
        return None

    def _ensure_worker(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        # A plain child interpreter, not multiprocessing: no fork under threads, no re-import of __main__.
        self._proc = subprocess.Popen([sys.executable, "-c", "from lorag.rag.pdf import serve; serve()"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._requests = Connection(os.dup(self._proc.stdin.fileno()), readable=False)
        self._conn = Connection(os.dup(self._proc.stdout.fileno()), writable=False)
        self._proc.stdin.close()
        self._proc.stdout.close()

    def _send(self, request: tuple[Any, ...]) -> None:
        assert self._requests is not None
        with contextlib.suppress(OSError):  # a dead worker shows as a timeout or EOF on the reply
            self._requests.send(request)

    def _stop_worker(self) -> None:
        for conn in (self._requests, self._conn):
            if conn is not None:
                conn.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        if self._proc is not None:
            self._proc.wait()
        self._proc = self._conn = self._requests = None

    def _restart(self) -> None:
        self._stop_worker()
        self._ensure_worker()


def serve() -> None:
    """The worker's main loop: answers (status, value) to open/text/render requests on stdin/stdout."""
    channel = os.dup(1)
    os.dup2(2, 1)  # anything the C library prints must not corrupt the reply channel
    _serve(Connection(0, writable=False), Connection(channel, readable=False))


def _serve(requests: Connection, conn: Connection) -> None:
    import pypdfium2 as pdfium

    doc: Any = None
    while True:
        try:
            request = requests.recv()
        except EOFError:
            return
        if request[0] == "quit":
            return
        try:
            if request[0] == "open":
                if doc is not None:
                    doc.close()
                doc = None
                doc = pdfium.PdfDocument(request[1])
                conn.send(("ok", [_label(doc, i) for i in range(len(doc))]))
            elif request[0] == "text":
                conn.send(("ok", _page_text(doc, request[1])))
            elif request[0] == "render":
                conn.send(("ok", _render_page(doc, *request[1:])))
        except pdfium.PdfiumError as exc:
            status = "encrypted" if "password" in str(exc).lower() else "error"
            conn.send((status, str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__))
        except Exception as exc:  # any failure of one request is reported, the worker lives on
            conn.send(("error", f"{type(exc).__name__}: {str(exc)[:160]}"))


def _label(doc: Any, index: int) -> str | None:
    try:
        label = doc.get_page_label(index)
    except Exception:  # a broken /PageLabels tree only loses the labels
        return None
    return str(label) if label else None


def _page_text(doc: Any, index: int) -> str:
    page = doc[index]
    textpage = page.get_textpage()
    try:
        return str(textpage.get_text_bounded()).replace("\r\n", "\n").replace("\r", "\n")
    finally:
        textpage.close()
        page.close()


def _render_page(doc: Any, index: int, dpi: int, max_pixels: int) -> tuple[str, tuple[int, int], bytes]:
    page = doc[index]
    try:
        width, height = page.get_size()  # points (1/72 inch)
        scale = dpi / 72
        pixels = width * scale * height * scale
        if pixels > max_pixels:
            scale *= (max_pixels / pixels) ** 0.5
        image = page.render(scale=scale, grayscale=True).to_pil()
        return image.mode, image.size, image.tobytes()
    finally:
        page.close()
