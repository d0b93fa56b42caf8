"""OCR with Tesseract (Japanese, horizontal and vertical) for scanned PDF pages and image files.

Tesseract runs as its own process (``tesseract stdin stdout``), so a page that takes too long is killed
and skipped. Its Japanese output separates characters with spaces; ``clean_page_text`` removes them.

Usage::

    ocr = Ocr(languages="jpn+jpn_vert", timeout_s=120)
    if ocr.available():
        text = ocr.image_text(image)          # a PIL image
"""

from __future__ import annotations

import functools
import io
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

from lorag.errors import IngestError

log = logging.getLogger(__name__)
INSTALL_HINT = "Install it: apt-get install tesseract-ocr tesseract-ocr-jpn tesseract-ocr-jpn-vert"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Beyond this many times the OCR pixel budget an image is refused rather than decoded (a decompression bomb).
REFUSE_FACTOR = 8


class Ocr:
    """Tesseract with the given languages; ``available()`` says whether it can run here and why not."""

    def __init__(self, languages: str = "jpn+jpn_vert", timeout_s: float = 120.0, threads: int = 0) -> None:
        self.languages = languages
        self.timeout_s = timeout_s
        self.threads = threads  # Tesseract's OpenMP threads per page; 0 leaves its own default

    def missing(self) -> str:
        """Why OCR cannot run ("" when it can): no tesseract binary, or a language pack not installed."""
        binary = shutil.which("tesseract")
        if binary is None:
            return f"tesseract is not installed. {INSTALL_HINT}"
        have = _languages(binary)
        lacking = [lang for lang in self.languages.split("+") if lang not in have]
        if lacking:
            return f"Tesseract has no {'+'.join(lacking)} language data. {INSTALL_HINT}"
        return ""

    def available(self) -> bool:
        return not self.missing()

    def image_text(self, image: Any, what: str = "image") -> str:
        """The text Tesseract reads in a PIL image; IngestError on timeout or failure."""
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        cmd = ["tesseract", "stdin", "stdout", "-l", self.languages, "--psm", "3"]
        try:
            done = subprocess.run(cmd, input=buf.getvalue(), capture_output=True, timeout=self.timeout_s, check=False,
                                  env=self._env())
        except subprocess.TimeoutExpired as exc:
            raise IngestError(f"OCR of {what} took more than {self.timeout_s:g} s; skipped.",
                              "Raise ingest.ocr_timeout_s for very dense pages.") from exc
        except FileNotFoundError as exc:
            raise IngestError(f"tesseract is not installed. {INSTALL_HINT}") from exc
        if done.returncode != 0:
            reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise IngestError(f"OCR of {what} failed: {reason[-1] if reason else f'exit {done.returncode}'}.")
        return done.stdout.decode("utf-8", "replace")


    def _env(self) -> dict[str, str] | None:
        if not self.threads:
            return None
        import os

        return {**os.environ, "OMP_THREAD_LIMIT": str(self.threads)}


class OcrPool:
    """OCR of several pages at once, one single-threaded Tesseract per worker, as the pages are rendered.

    ``submit`` blocks while ``2 * workers`` pages wait, so rendered images do not pile up in memory; ``results``
    waits for all of them: page key -> text, or the IngestError that page raised.

        with OcrPool(ocr, workers=2) as pool:
            pool.submit(3, image, "scan.pdf page 3")
            texts = pool.results()
    """

    def __init__(self, ocr: Ocr, workers: int) -> None:
        import threading
        from concurrent.futures import ThreadPoolExecutor

        self.workers = max(1, workers)
        # One page alone may use every core; several at once run one thread each (no oversubscription).
        self._ocr = ocr if self.workers == 1 else Ocr(ocr.languages, ocr.timeout_s, threads=1)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="lorag-ocr")
        self._slots = threading.Semaphore(2 * self.workers)
        self._futures: dict[int, Any] = {}

    def __enter__(self) -> OcrPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, key: int, image: Any, what: str) -> None:
        self._slots.acquire()
        future = self._pool.submit(self._ocr.image_text, image, what)
        future.add_done_callback(lambda _f: self._slots.release())
        self._futures[key] = future

    def results(self) -> dict[int, str | IngestError]:
        out: dict[int, str | IngestError] = {}
        for key, future in self._futures.items():
            try:
                out[key] = future.result()
            except IngestError as exc:
                out[key] = exc
        self._futures.clear()
        return out


def ocr_workers(setting: int) -> int:
    """``ingest.ocr_workers``: 0 means one per CPU core, at most 4."""
    import os

    return setting if setting > 0 else min(4, os.cpu_count() or 1)


@functools.cache
def _languages(binary: str) -> frozenset[str]:
    try:
        out = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(line.strip() for line in out.stdout.splitlines()[1:] if line.strip())


def open_image(path: Path, max_pixels: int) -> tuple[Any, str]:
    """A grayscale PIL image of ``path``, scaled down to ``max_pixels`` when larger (then with a warning)."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # the checks below replace PIL's bomb warning with a clear message
    try:
        image: Any = Image.open(path)
        width, height = image.size
        if width * height > REFUSE_FACTOR * max_pixels:
            raise IngestError(f"{path.name} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), "
                              f"too large to OCR.", "Scale it down or split it, then ingest it again.")
        warning = ""
        if width * height > max_pixels:
            scale = (max_pixels / (width * height)) ** 0.5
            size = (max(1, int(width * scale)), max(1, int(height * scale)))
            image.draft("L", size)  # JPEG decodes straight at a reduced size
            image = image.convert("L").resize(size)
            warning = (f"{path.name}: {width}x{height} pixels is over ingest.max_image_megapixels; "
                       f"scaled to {size[0]}x{size[1]} for OCR.")
        else:
            image = image.convert("L")
        return image, warning
    except IngestError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise IngestError(f"{path.name} is not a readable image ({type(exc).__name__}).",
                          "Check that the file is complete and not damaged.") from exc
