"""Unexpected failures: the traceback goes to a log file, the user gets one line naming the failure and the file.

Usage (a worker, a server job, or any entry point that must not show a traceback)::

    try:
        run()
    except Exception as exc:
        line = failure_line(exc, "the build", log_dir=config.data_dir / "logs")
        # LoragError → its own message; full disk, read-only, permission, network → named with what to do;
        # anything else → "the build failed unexpectedly (KeyError: 'x'). … traceback in /…/lorag-….log"
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import traceback
from pathlib import Path

from lorag.atomic import atomic_write_text
from lorag.errors import LoragError, clarify, recognise

KEEP_LOGS = 20  # newest traceback logs kept per folder; older ones are removed when a new one is written
LOG_PREFIX = "lorag-"
_MAX_DETAIL = 200  # characters of the exception's own message in the one line


def default_log_dir() -> Path:
    """``$XDG_CACHE_HOME/lorag/logs``, else ``~/.cache/lorag/logs``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "lorag" / "logs"


def save_traceback(exc: BaseException, context: str = "", log_dir: Path | None = None) -> Path | None:
    """Write ``exc``'s traceback atomically to a new log file and return its path (None if no folder is writable).

    The first folder that takes the file wins: ``log_dir``, the default log folder, then the system temp folder
    (a full or read-only disk is often why we are here).
    """
    text = _log_text(exc, context)
    name = f"{LOG_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    folders = [d for d in (log_dir, default_log_dir(), Path(tempfile.gettempdir()) / "lorag-logs") if d is not None]
    for folder in folders:
        try:
            path = folder / name
            atomic_write_text(path, text)
        except OSError:
            continue
        _prune(folder)
        return path
    return None


def _log_text(exc: BaseException, context: str) -> str:
    import platform
    import sys

    head = [f"time: {time.strftime('%Y-%m-%d %H:%M:%S %z')}", f"context: {context or '-'}",
            f"python: {sys.version.split()[0]} on {platform.platform()}", ""]
    return "\n".join(head) + "".join(traceback.format_exception(exc))


def _prune(folder: Path) -> None:
    logs = sorted(folder.glob(f"{LOG_PREFIX}*.log"), key=lambda p: (p.stat().st_mtime, p.name))
    for old in logs[:-KEEP_LOGS]:
        with contextlib.suppress(OSError):
            old.unlink()


def failure_line(exc: BaseException, action: str, log_dir: Path | None = None) -> str:
    """One line for the user about ``exc`` raised while doing ``action`` (e.g. "`lorag ingest`", "the build").

    Expected failures (lorag's own errors, and faults that ``recognise`` names) need no log; anything else is a
    bug, so its traceback is saved and the line says where.
    """
    if isinstance(exc, LoragError):
        return str(clarify(exc))
    fault = recognise(exc)
    if fault is not None:
        return str(fault)
    path = save_traceback(exc, action, log_dir)
    head = f"{action} failed unexpectedly ({describe(exc)}). This is a bug in lorag"
    if path is None:
        return f"{head}; its traceback could not be saved (no writable log folder): run it again with -v to see it."
    return f"{head}: the traceback is in {path}; please include it when you report the problem."


def describe(exc: BaseException) -> str:
    """``Type: first line of the message``, shortened to a readable length."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
