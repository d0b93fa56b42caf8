"""Uploaded files: saved under server-chosen names in ``<data_dir>/uploads/``, original names kept in SQLite."""

from __future__ import annotations

import hashlib
import sqlite3
import time
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path, PurePath
from typing import IO, Any

from lorag.atomic import atomic_open
from lorag.errors import IngestError
from lorag.server.errors import PayloadTooLargeError, coded

CHUNK = 1024 * 1024
FALLBACK_EXTENSIONS = (".docx", ".htm", ".html", ".markdown", ".md", ".pdf", ".txt")


def supported_extensions() -> tuple[str, ...]:
    """The file types the ingest pipeline can read."""
    try:
        from lorag.rag.loaders import SUPPORTED_EXTENSIONS
    except ImportError:  # pragma: no cover - the RAG package is part of lorag
        return FALLBACK_EXTENSIONS
    return tuple(SUPPORTED_EXTENSIONS)


def clean_name(raw: str | None) -> str:
    """The base name of what the client called the file (no folders, no control characters)."""
    name = PurePath((raw or "").replace("\\", "/")).name
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C")
    return name.strip()[:255] or "upload"


class UploadIndex:
    """Which stored file came from which original name."""

    def __init__(self, folder: Path, db_path: Path) -> None:
        self.folder = folder
        self.db_path = db_path
        folder.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS uploads (stored TEXT PRIMARY KEY, original TEXT NOT NULL, "
                "size INTEGER NOT NULL, sha256 TEXT NOT NULL, uploaded_at REAL NOT NULL)"
            )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.db_path, timeout=30)) as db, db:
            yield db

    def save(self, source: IO[bytes], original: str, max_bytes: int) -> Path:
        """Copy an upload to a fresh server-chosen name; refuse unsupported types (400) and oversize (413)."""
        name = clean_name(original)
        ext = PurePath(name).suffix.lower()
        allowed = supported_extensions()
        if ext not in allowed:
            raise coded(IngestError(f"{name}: file type {ext or '(none)'} is not supported; "
                                    f"use one of {', '.join(allowed)}."),
                        "upload_type_unsupported", name=name, ext=ext or "(none)", allowed=", ".join(allowed))
        target = self.folder / f"{uuid.uuid4().hex}{ext}"
        digest, size = hashlib.sha256(), 0
        with atomic_open(target, "wb") as out:
            while block := source.read(CHUNK):
                size += len(block)
                if size > max_bytes:
                    raise coded(PayloadTooLargeError(f"{name} is larger than server.max_upload_mb."),
                                "upload_too_large", name=name, limit_mb=round(max_bytes / 1024 / 1024, 1))
                digest.update(block)
                out.write(block)
        with self._db() as db:
            db.execute("INSERT INTO uploads VALUES (?,?,?,?,?)",
                       (target.name, name, size, digest.hexdigest(), time.time()))
        return target

    def original_names(self) -> dict[str, str]:
        """Stored absolute path → original name."""
        with self._db() as db:
            rows = db.execute("SELECT stored, original FROM uploads").fetchall()
        return {str((self.folder / stored).resolve()): original for stored, original in rows}

    def owns(self, path: Path) -> bool:
        """True if ``path`` is a stored upload (so deleting the document may delete the file)."""
        return path.resolve().parent == self.folder.resolve()

    def forget(self, path: Path) -> None:
        """Delete a stored upload and its record."""
        if not self.owns(path):
            return
        path.unlink(missing_ok=True)
        with self._db() as db:
            db.execute("DELETE FROM uploads WHERE stored = ?", (path.name,))


def name_failures(report: dict[str, Any], saved: list[tuple[Path, str]]) -> list[dict[str, str]]:
    """The report's failed uploads by the user's file names: each gets ``name``, and the reasons lose the
    server-chosen path (``/…/uploads/3f2a….txt is empty`` becomes ``食堂.txt is empty``)."""
    originals = {str(path.resolve()): clean_name(name) for path, name in saved}
    named = []
    for item in report.get("failed", []):
        name = originals.get(item["path"])
        if name is None:
            continue
        stored = Path(item["path"])
        reason = str(item["reason"]).replace(str(stored), name).replace(stored.name, name)
        item.update(name=name, reason=reason)
        named.append({"name": name, "reason": reason})
    return named


def nothing_ingested(failures: list[dict[str, str]]) -> IngestError:
    """The error for an upload where no file could be ingested, naming each file."""
    reasons = "; ".join(f"{f['name']}: {f['reason'].removeprefix(f['name'] + ': ')}" for f in failures)
    return coded(IngestError(f"nothing was ingested: {reasons}"), "upload_nothing_ingested", reasons=reasons,
                 files=", ".join(f["name"] for f in failures))
