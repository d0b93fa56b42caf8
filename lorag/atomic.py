"""Atomic file writes: a temp file beside the target, fsync, then rename."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TMP_PREFIX = ".lorag-tmp-"
# Failures of the target's file system: reported with the target's path (the temp file's name means nothing).
_TARGET_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temp file that replaces ``path`` only if the block finishes without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in _TARGET_ERRNOS and exc.filename in (None, tmp):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def clean_stale_temps(directory: Path, *, files_only: bool = False, min_age_s: float = 0.0) -> int:
    """Remove temp files left by an interrupted atomic write; return how many.

    ``min_age_s`` spares temps written to in the last seconds (another process may be mid-write); ``files_only``
    spares temp folders (builds in progress hold those).
    """
    removed = 0
    if not directory.is_dir():
        return 0
    now = time.time()
    for entry in directory.glob(TMP_PREFIX + "*"):
        try:
            is_dir = entry.is_dir()
            if (files_only and is_dir) or now - entry.lstat().st_mtime < min_age_s:
                continue
            if is_dir:
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        except OSError:
            continue  # not ours to remove, or gone already: leave it
        removed += 1
    return removed


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically, keeping its mode and times (a full disk leaves ``dst`` as it was)."""
    with atomic_open(dst, "wb") as fh, open(src, "rb") as source:
        shutil.copyfileobj(source, fh)
    shutil.copystat(src, dst)
