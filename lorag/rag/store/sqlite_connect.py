"""Opening the SQLite store's file: connections (read-only when it cannot be written), write transactions, errors."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from lorag.errors import StoreError

log = logging.getLogger(__name__)
BUSY_TIMEOUT_S = 60


class Transaction:
    """Context manager for one write transaction; SQLite errors become StoreError."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise sqlite_error(self._path, exc) from exc

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.OperationalError as err:
                self._rollback()
                raise sqlite_error(self._path, err) from err
        self._rollback()
        if isinstance(exc, sqlite3.OperationalError):
            raise sqlite_error(self._path, exc) from exc

    def _rollback(self) -> None:
        # SQLite rolls back by itself after some errors (disk full): a second ROLLBACK would fail.
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.OperationalError:
                log.debug("rollback of %s failed", self._path, exc_info=True)


def sqlite_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """A one-line StoreError naming what went wrong (read-only, disk full, busy) and what to do."""
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return StoreError(f"the store {path} is read-only.", "Make the file and its directory writable.")
    if "disk is full" in text or "disk I/O error" in text:
        return StoreError(f"cannot write the store {path}: database or disk is full; nothing was changed.",
                          "Free some disk space and try again.")
    if "locked" in text or "busy" in text:
        return StoreError(f"the store {path} stayed busy for {BUSY_TIMEOUT_S} s: another lorag process is "
                          "writing to it.", "Wait for that ingest to finish and try again.")
    return StoreError(f"cannot use the store {path}: {exc}.")


def check_writable(path: Path) -> bool:
    """Whether the store can be written; fail early, with a clear message, when a new one cannot be created."""
    directory = path.parent
    if path.exists():
        # WAL mode needs to create <store>-wal and -shm beside the file: without that, open it for reading only.
        return os.access(directory, os.W_OK) and os.access(path, os.W_OK)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store directory {directory}: {exc.strerror}.",
                         "Set store.path in lorag.yaml to a writable place.") from exc
    if not os.access(directory, os.W_OK):
        raise StoreError(f"the store {path} is read-only (its directory or file cannot be written).",
                         "Make it writable or set store.path in lorag.yaml to a writable place.")
    return True


def connect(path: Path, read_only: bool) -> sqlite3.Connection:
    """A connection to the store; a store that cannot be written is opened for reading (searches, listings)."""
    if not read_only:
        return sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    from urllib.parse import quote

    uri = f"file:{quote(str(path.resolve()))}"
    wal = path.with_name(path.name + "-wal")
    # mode=ro needs the -shm file beside it (or leave to create it); with no pending WAL, immutable needs neither.
    options = ["mode=ro"] + ([] if wal.exists() and wal.stat().st_size else ["immutable=1"])
    for option in options:
        db = sqlite3.connect(f"{uri}?{option}", uri=True, isolation_level=None, check_same_thread=False,
                             timeout=BUSY_TIMEOUT_S)
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.Error:
            db.close()
    raise StoreError(f"cannot read the store {path}: it is read-only and its write-ahead log ({wal.name}) "
                     "holds changes that only a writable store can apply.",
                     "Make the store's folder writable once (any lorag command then applies the log), or "
                     "copy the store to a writable place.")
