"""Copy a store into another (SQLite to PostgreSQL, or any peer to any peer) without loss, resumably.

Each document is copied in its own transaction, so a migration killed half-way leaves whole documents only; a
rerun skips those already there. The target is marked complete only after its document and chunk counts and a
content checksum (every document's fields, every chunk's text, location, tokens and vector bytes) equal the
source's. The source is only read.

Usage::

    report = migrate(Store(config.store_path), "postgresql://lorag@db/lorag")
    print(report.documents, report.chunks, report.checksum)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lorag.errors import StoreError
from lorag.rag.store.base import DocumentRow, NewChunk, Store

COPIED_META = ("embedder", "tokenizer")
MigrateProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class MigrationReport:
    """What a migration did and the evidence that nothing was lost."""

    documents: int
    chunks: int
    copied: int  # documents copied by this run (the rest were already there from an interrupted run)
    checksum: str


def migrate(source: Store, target_location: str, progress: MigrateProgress | None = None) -> MigrationReport:
    """Copy every document of ``source`` into the store at ``target_location`` and verify the copy."""
    from lorag.rag.store.factory import same_location

    origin = str(source.path)
    if same_location(target_location, source.path if isinstance(source.path, Path) else origin):
        raise StoreError("the source and the target of the migration are the same store.")
    with Store(target_location) as target:
        _check_target(source, target, origin)
        with target.transaction():
            target.set_meta("migration", "in-progress")
            target.set_meta("migrated_from", origin)
            for key in COPIED_META:
                value = source.get_meta(key)
                if value is not None:
                    target.set_meta(key, value)
        docs = source.list_documents()
        copied = 0
        with target.bulk_load():
            for n, doc in enumerate(docs, start=1):
                if progress:
                    progress(n - 1, len(docs), doc.path)
                copied += _copy_document(source, target, doc)
        _remove_extra(target, {d.path for d in docs})
        return _verify(source, target, len(docs), copied)


def _check_target(source: Store, target: Store, origin: str) -> None:
    came_from = target.get_meta("migrated_from")
    if target.list_documents() and came_from != origin:
        raise StoreError(f"the target store {target.path} already holds documents that did not come from "
                         f"{origin}; nothing was copied.", "Migrate into an empty database or store.")
    for key in COPIED_META:
        have, want = target.get_meta(key), source.get_meta(key)
        if target.list_documents() and have is not None and want is not None and have != want:
            raise StoreError(f"the target store {target.path} was built with {key} {have!r}, the source with "
                             f"{want!r}.", "Migrate into an empty database or store.")


def _copy_document(source: Store, target: Store, doc: DocumentRow) -> int:
    there = target.find_document(doc.path)
    if there is not None and there.path == doc.path and _same_fields(there, doc):
        return 0  # copied by an earlier, interrupted run (each document is one transaction)
    target.replace_document(doc.path, doc.sha256, doc.mtime, doc.size, source.document_chunks(doc.id),
                            collection=doc.collection, meta=doc.meta, added_at=doc.added_at)
    return 1


def _same_fields(a: DocumentRow, b: DocumentRow) -> bool:
    return (a.sha256, a.n_chunks, a.collection, a.meta, a.added_at, a.mtime, a.size) == (
        b.sha256, b.n_chunks, b.collection, b.meta, b.added_at, b.mtime, b.size)


def _remove_extra(target: Store, paths: set[str]) -> None:
    # Documents removed from the source between an interrupted run and this one.
    for doc in target.list_documents():
        if doc.path not in paths:
            target.delete_document(doc.id)


def _verify(source: Store, target: Store, n_docs: int, copied: int) -> MigrationReport:
    want, have = content_checksum(source), content_checksum(target)
    if want != have:
        raise StoreError(f"the copy in {target.path} differs from the source (documents/chunks {want[0]}/{want[1]} "
                         f"vs {have[0]}/{have[1]}, checksum {want[2][:12]} vs {have[2][:12]}); it was not marked "
                         "complete.", "Run the migration again.")
    with target.transaction():
        target.set_meta("migration", "complete")
        target.set_meta("migration_checksum", want[2])
    return MigrationReport(n_docs, want[1], copied, want[2])


def content_checksum(store: Store) -> tuple[int, int, str]:
    """(documents, chunks, SHA-256 over every document and chunk in path order), the same for every backend."""
    digest = hashlib.sha256()
    n_docs = n_chunks = 0
    for doc in sorted(store.list_documents(), key=lambda d: d.path.encode()):
        fields = [doc.path, doc.sha256, repr(float(doc.mtime)), doc.size, doc.n_chunks, doc.added_at,
                  doc.collection, json.dumps(doc.meta, sort_keys=True, ensure_ascii=False)]
        digest.update(json.dumps(fields, ensure_ascii=False).encode())
        for chunk in store.document_chunks(doc.id):
            _hash_chunk(digest, chunk)
            n_chunks += 1
        n_docs += 1
    return n_docs, n_chunks, digest.hexdigest()


def _hash_chunk(digest: hashlib._Hash, c: NewChunk) -> None:
    digest.update(json.dumps([c.text, c.page, c.start, c.end, c.tokens, c.page_label], ensure_ascii=False).encode())
    if c.vector is not None and c.vector.size:
        digest.update(np.asarray(c.vector, dtype=np.float32).tobytes())
    digest.update(b"\x00")
