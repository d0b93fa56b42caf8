"""The reading half of the ingest pipeline: a thread that reads, chunks and tokenises files ahead of embedding.

It puts ``FileBatch`` (chunks with tokens, ready to embed), ``FileDone`` (the file's last batch was sent)
and ``FileFailed`` items on a bounded queue; ``items()`` yields them in order in the consuming thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorag.config import Config
from lorag.errors import IngestError
from lorag.rag.chunking import chunk_text
from lorag.rag.japanese import tokenize_many
from lorag.rag.loaders import Page, check_file
from lorag.rag.reader import DocumentReader, LoadedDocument

ProgressFn = Callable[[dict[str, Any]], None]
PAGES_PER_BATCH = 8  # pages chunked and tokenised together before the batch goes to the embedder
QUEUE_BATCHES = 64


@dataclass(frozen=True)
class PendingChunk:
    """A chunk with its BM25 tokens, waiting for its vector."""

    text: str
    page: int | None
    start: int
    end: int
    tokens: list[str]
    page_label: str | None = None


@dataclass
class FileBatch:
    path: Path
    chunks: list[PendingChunk]


@dataclass
class FileDone:
    """A file fully read; ``document`` is None when it was unchanged."""

    path: Path
    sha256: str = ""
    mtime: float = 0.0
    size: int = 0
    existed: bool = False
    unchanged: bool = False
    document: LoadedDocument | None = None


@dataclass
class FileFailed:
    path: Path
    reason: str


@dataclass
class _Stop:
    error: BaseException | None = None


def emit(progress: ProgressFn | None, stage: str, path: Path | None, done: int, total: int, **extra: Any) -> None:
    if progress is not None:
        progress({"stage": stage, "path": str(path) if path else None, "done": done, "total": total, **extra})


@dataclass
class ReaderThread:
    """Reads ``files`` in a background thread; ``known`` maps stored paths to their SHA-256."""

    config: Config
    files: list[Path]
    known: dict[str, str]
    progress: ProgressFn | None = None
    seconds: dict[str, float] = field(default_factory=lambda: {"parse": 0.0, "tokenize": 0.0})
    chunks_total: int = 0
    files_done: int = 0
    notices: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lorag-ingest-reader", daemon=True)

    @property
    def files_total(self) -> int:
        return len(self.files)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait_s: float = 5.0) -> None:
        """Cancel reading (after an error or Ctrl-C in the consumer); wait a little for the thread to end
        (a daemon thread stuck in a long OCR call ends with the process)."""
        self._cancel.set()
        deadline = time.monotonic() + wait_s
        while self._thread.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)

    def items(self) -> Iterator[FileBatch | FileDone | FileFailed]:
        while True:
            item = self._queue.get()
            if isinstance(item, _Stop):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def _put(self, item: Any) -> None:
        while not self._cancel.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        settings = self.config.settings.ingest
        try:
            with DocumentReader(settings) as reader:
                for path in self.files:
                    if self._cancel.is_set():
                        break
                    emit(self.progress, "parse", path, self.files_done, self.files_total)
                    try:
                        self._read_file(reader, path)
                    except IngestError as exc:
                        self._put(FileFailed(path, str(exc)))
                    self.files_done += 1
                self.notices = list(reader.notices)
        except BaseException as exc:  # handed to the consuming thread, which raises it
            self._put(_Stop(exc))
            return
        self._put(_Stop())

    def _read_file(self, reader: DocumentReader, path: Path) -> None:
        size = check_file(path, self.config.settings.ingest.max_file_mb)
        try:
            digest = _digest(path)
        except OSError as exc:
            raise IngestError(f"cannot read {path}: {exc.strerror}.") from exc
        old = self.known.get(str(path))
        if old == digest:
            self._put(FileDone(path, digest, unchanged=True))
            return
        t0 = time.perf_counter()
        document = reader.read(path)
        self.seconds["parse"] += time.perf_counter() - t0
        for i in range(0, len(document.pages), PAGES_PER_BATCH):
            self._put(FileBatch(path, self._chunks(document, document.pages[i : i + PAGES_PER_BATCH])))
        self._put(FileDone(path, digest, path.stat().st_mtime, size, old is not None, document=document))

    def _chunks(self, document: LoadedDocument, pages: list[Page]) -> list[PendingChunk]:
        s = self.config.settings
        t0 = time.perf_counter()
        pieces = [(c, page.label) for page in pages
                  for c in chunk_text(page.text, s.ingest.chunk_chars, s.ingest.overlap_chars, page.number,
                                      markdown=document.markdown, min_chunk_chars=s.ingest.min_chunk_chars)]
        self.seconds["parse"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        token_lists = tokenize_many((c.text for c, _ in pieces), s.retrieval.tokenizer)
        self.seconds["tokenize"] += time.perf_counter() - t0
        self.chunks_total += len(pieces)
        label_of = document.labels
        return [PendingChunk(c.text, c.page, c.start, c.end, tokens,
                             label_of.get(c.page) if c.page is not None else None)
                for (c, _label), tokens in zip(pieces, token_lists, strict=True)]


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
