"""Ingest files and folders into the store: parse, chunk, tokenise, embed, store (one transaction per file).

Unchanged files (same SHA-256) are skipped; changed files replace their chunks; failures are reported
and never half-indexed.

Usage::

    report = ingest_paths(load_config(), ["docs/"])
    print(report.added, report.failed)
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lorag.config import Config
from lorag.errors import IngestError, StoreError
from lorag.rag.chunking import chunk_text
from lorag.rag.embedders import Embedder, get_embedder
from lorag.rag.japanese import tokenize_many
from lorag.rag.loaders import SUPPORTED_EXTENSIONS, check_file, load_document
from lorag.rag.store import NewChunk, Store

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class IngestReport:
    """What an ingest did, file by file, plus where the time went (seconds per stage)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    chars: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("parse", "tokenize", "embed", "store"),
                                                                             0.0))

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = [{"path": p, "reason": r} for p, r in self.failed]
        return data


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


def ingest_paths(config: Config, paths: Sequence[str | Path], progress: ProgressFn | None = None) -> IngestReport:
    """Ingest files and folders (recursively); see the module docstring."""
    report = IngestReport()
    files, report.failed, folders = find_files(paths)
    with Store(config.store_path) as store:
        embedder = _check_store_settings(config, store)
        for done, path in enumerate(files):
            _emit(progress, "parse", path, done, len(files))
            try:
                _ingest_file(config, store, embedder, path, report, progress)
            except IngestError as exc:
                report.failed.append((str(path), str(exc)))
        report.removed = _forget_vanished(store, folders)
        _emit(progress, "store", None, len(files), len(files))
    return report


def _check_store_settings(config: Config, store: Store) -> Embedder:
    """Refuse to mix tokenizers or embedders in one store: the vectors would not be comparable."""
    r = config.settings.retrieval
    for key, wanted in (("embedder", r.embedder), ("tokenizer", r.tokenizer)):
        have = store.get_meta(key)
        if have is not None and have != wanted and store.list_documents():
            raise StoreError(f"the store {store.path} was built with {key} {have!r}, but retrieval.{key} is "
                             f"{wanted!r}.", f"Set retrieval.{key} back to {have!r}, or move the store away and "
                             "ingest again.")
    with store.transaction():
        store.set_meta("embedder", r.embedder)
        store.set_meta("tokenizer", r.tokenizer)
    return get_embedder(r.embedder)


def _ingest_file(config: Config, store: Store, embedder: Embedder, path: Path, report: IngestReport,
                 progress: ProgressFn | None) -> None:
    ingest = config.settings.ingest
    size = check_file(path, ingest.max_file_mb)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    old = store.find_document(str(path))
    if old is not None and old.sha256 == digest:
        report.unchanged.append(str(path))
        return
    t0 = time.perf_counter()
    pieces = [c for page in load_document(path, ingest.max_file_mb)
              for c in chunk_text(page.text, ingest.chunk_chars, ingest.overlap_chars, page.number)]
    t1 = time.perf_counter()
    token_lists = tokenize_many((c.text for c in pieces), config.settings.retrieval.tokenizer)
    t2 = time.perf_counter()

    def embed_progress(done: int, total: int) -> None:
        _emit(progress, "embed", path, done, total)

    vectors = embedder.embed_passages([c.text for c in pieces], progress=embed_progress)
    t3 = time.perf_counter()
    new = [NewChunk(c.text, c.page, c.start, c.end, toks, vectors[i] if embedder.dim else None)
           for i, (c, toks) in enumerate(zip(pieces, token_lists, strict=True))]

    def store_progress(done: int, total: int) -> None:
        _emit(progress, "store", path, done, total)

    store.replace_document(str(path), digest, path.stat().st_mtime, size, new, progress=store_progress)
    t4 = time.perf_counter()
    for stage, seconds in zip(("parse", "tokenize", "embed", "store"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3),
                              strict=True):
        report.seconds[stage] += seconds
    report.chunks += len(new)
    report.chars += sum(len(c.text) for c in pieces)
    (report.added if old is None else report.updated).append(str(path))


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
    with Store(config.store_path) as store:
        for doc in store.list_documents():
            p = Path(doc.path)
            if any(p == t or p.is_relative_to(t) for t in targets):
                store.delete_document(doc.id)
                removed += 1
    return removed


def _emit(progress: ProgressFn | None, stage: str, path: Path | None, done: int, total: int) -> None:
    if progress is not None:
        progress({"stage": stage, "path": str(path) if path else None, "done": done, "total": total})
