"""Ingest files and folders into the store: read, chunk, tokenise, embed, store (one transaction per file).

A reader thread reads and chunks documents (PDF text in a worker process, OCR in Tesseract processes) and
tokenises them while the main thread embeds the batches it has already produced, so the stages overlap.
Unchanged files (same SHA-256) are skipped; changed files replace their chunks; a failed file is reported
and never half-indexed; a file is committed only when all of it is embedded, so an ingest that is killed
keeps the files it finished and the next run completes the rest.

Usage::

    report = ingest_paths(load_config(), ["docs/"], collection="manuals")
    print(report.added, report.failed, report.chunks_per_s)
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from lorag.config import Config
from lorag.errors import StoreError
from lorag.rag.embedders import EMBEDDER_IDS, Embedder, passage_embedder
from lorag.rag.loaders import SUPPORTED_EXTENSIONS
from lorag.rag.pipeline import FileBatch, FileDone, FileFailed, ProgressFn, ReaderThread, emit
from lorag.rag.report import IngestReport
from lorag.rag.store import DEFAULT_COLLECTION, NewChunk, Store, open_store

__all__ = ["IngestReport", "find_files", "ingest_paths", "remove_paths"]
# Libraries that log or warn about every odd font or object in a PDF; shown only with -v.
NOISY_LOGGERS = ("pypdf", "pdfminer", "fontTools", "PIL", "pypdfium2")


def find_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]], list[Path]]:
    """Expand ``paths``: (files to ingest, (path, reason) failures, folders walked)."""
    files: list[Path] = []
    failed: list[tuple[str, str]] = []
    folders: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if path.is_dir():
            folders.append(path)
            files.extend(_walk(path))
        elif path.exists():
            files.append(path)
        else:
            failed.append((str(path), f"{raw} does not exist."))
    unique = list(dict.fromkeys(files))
    return unique, failed, folders


def _walk(folder: Path) -> list[Path]:
    """Supported files under ``folder``, recursively, skipping hidden files and folders (like .lorag/)."""
    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).parts
        if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS and not any(s.startswith(".") for s in rel):
            found.append(p)
    return found


def ingest_paths(config: Config, paths: Sequence[str | Path], progress: ProgressFn | None = None, *,
                 collection: str = DEFAULT_COLLECTION) -> IngestReport:
    """Ingest files and folders (recursively) into ``collection``; see the module docstring."""
    report = IngestReport()
    started = time.perf_counter()
    files, report.failed, folders = find_files(paths)
    with _quiet_libraries(), open_store(config) as store:
        _check_store_settings(config, store)
        known = {d.path: d.sha256 for d in store.list_documents()}
        reader = ReaderThread(config, files, known, progress)
        reader.start()  # the first files are read while the embedder loads (seconds for torch)
        try:
            embedder = _open_embedder(config, store)
            _consume(reader, store, embedder, report, progress, collection)
        finally:
            reader.stop()
        report.notices = reader.notices
        report.removed = _forget_vanished(store, folders)
        emit(progress, "store", None, len(files), len(files))
    report.seconds["wall"] = time.perf_counter() - started
    return report


def _consume(reader: ReaderThread, store: Store, embedder: Embedder, report: IngestReport,
             progress: ProgressFn | None, collection: str) -> None:
    """Embed batches as the reader produces them; store each file when its last batch is embedded."""
    pending: dict[Path, list[NewChunk]] = {}
    for item in reader.items():
        if isinstance(item, FileFailed):
            report.failed.append((str(item.path), item.reason))
        elif isinstance(item, FileBatch):
            pending.setdefault(item.path, []).extend(_embed(item, embedder, report, reader, progress))
        elif isinstance(item, FileDone):
            if item.unchanged:
                report.unchanged.append(str(item.path))
                continue
            chunks = pending.pop(item.path, [])
            _store(store, item, chunks, report, progress, collection, EMBEDDER_IDS[embedder.name])
    report.seconds["parse"] += reader.seconds["parse"]
    report.seconds["tokenize"] += reader.seconds["tokenize"]


def _embed(batch: FileBatch, embedder: Embedder, report: IngestReport, reader: ReaderThread,
           progress: ProgressFn | None) -> list[NewChunk]:
    done_before = report.embedded

    def embed_progress(done: int, _total: int) -> None:
        emit(progress, "embed", batch.path, done_before + done, reader.chunks_total, files_done=reader.files_done,
             files_total=reader.files_total)

    t0 = time.perf_counter()
    vectors = embedder.embed_passages([c.text for c in batch.chunks], progress=embed_progress)
    report.seconds["embed"] += time.perf_counter() - t0
    report.embedded += len(batch.chunks)
    return [NewChunk(c.text, c.page, c.start, c.end, c.tokens, vectors[i] if embedder.dim else None, c.page_label)
            for i, c in enumerate(batch.chunks)]


def _store(store: Store, item: FileDone, chunks: list[NewChunk], report: IngestReport, progress: ProgressFn | None,
           collection: str, embedder_id: str) -> None:
    def store_progress(done: int, total: int) -> None:
        emit(progress, "store", item.path, done, total)

    t0 = time.perf_counter()
    assert item.document is not None
    try:
        store.replace_document(str(item.path), item.sha256, item.mtime, item.size, chunks, progress=store_progress,
                               collection=collection, meta={**item.document.meta(), "embedder_id": embedder_id})
    except sqlite3.Error as exc:
        raise write_error(store, exc) from exc
    report.seconds["store"] += time.perf_counter() - t0
    report.record(item, len(chunks))


def write_error(store: Store, exc: BaseException) -> StoreError:
    """One line for a failed write, naming the first cause (SQLite's "database or disk is full" hides behind
    the "cannot rollback" that follows it when SQLite has already rolled the transaction back)."""
    cause: BaseException | None = exc
    while cause is not None and cause.__context__ is not None:
        cause = cause.__context__
    reason = str(cause or exc).splitlines()[0] if str(cause or exc) else type(exc).__name__
    hint = ("Free some disk space (or move store.path) and run the ingest again: the files already stored are kept."
            if "full" in reason else "The files already stored are kept; run the ingest again.")
    return StoreError(f"cannot write the store {store.path}: {reason}.", hint)


def _check_store_settings(config: Config, store: Store) -> None:
    """Refuse to mix tokenizers or embedders in one store: the vectors would not be comparable."""
    r = config.settings.retrieval
    has_documents = bool(store.list_documents())
    have_tokenizer = store.get_meta("tokenizer")
    if has_documents and have_tokenizer is not None and have_tokenizer != r.tokenizer:
        raise StoreError(f"the store {store.path} was built with tokenizer {have_tokenizer!r}, but "
                         f"retrieval.tokenizer is {r.tokenizer!r}.",
                         f"Set retrieval.tokenizer back to {have_tokenizer!r}, or move the store away and ingest "
                         "again.")
    have = store.get_meta("embedder")
    if has_documents and have is not None and have != r.embedder:
        raise StoreError(f"the store {store.path} was built with embedder {have!r}, but retrieval.embedder is "
                         f"{r.embedder!r}; its vectors cannot be compared.",
                         f"Run `lorag reindex` to re-embed it with {r.embedder!r}, or set retrieval.embedder back "
                         f"to {have!r}.")


def _open_embedder(config: Config, store: Store) -> Embedder:
    """The ingest embedder (IngestError before anything is stored if its files are damaged); the store records it."""
    r = config.settings.retrieval
    embedder = passage_embedder(r.embedder, config.settings.ingest.embed_device)
    with store.transaction():
        store.set_meta("embedder", r.embedder)
        store.set_meta("embedder_id", EMBEDDER_IDS[r.embedder])
        store.set_meta("tokenizer", r.tokenizer)
    return embedder


def _forget_vanished(store: Store, folders: list[Path]) -> list[str]:
    """Remove stored documents under an ingested folder whose files no longer exist."""
    removed = []
    for doc in store.list_documents():
        p = Path(doc.path)
        if any(p.is_relative_to(f) for f in folders) and not p.exists():
            store.delete_document(doc.id)
            removed.append(doc.path)
    return removed


def remove_paths(config: Config, paths: Sequence[str | Path]) -> int:
    """Remove the given files (or every file under the given folders) from the store; return how many."""
    targets = [Path(p).expanduser().resolve() for p in paths]
    removed = 0
    with open_store(config) as store:
        for doc in store.list_documents():
            p = Path(doc.path)
            if any(p == t or p.is_relative_to(t) for t in targets):
                store.delete_document(doc.id)
                removed += 1
    return removed


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Silence PDF and font libraries' warnings and logs unless debug logging (-v) is on."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
