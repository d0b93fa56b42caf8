"""Read the pages torch's import needs in large sequential reads, so a build's own reads can run beside the import.

A GPU build waits seconds for ``import torch`` (Python and the dynamic loader: CPU work) before the GPU can take a
tensor. Reading tensors meanwhile would overlap that wait, but from a cold page cache the import also reads about a
gigabyte of its own libraries, one page fault at a time, and those faults queue behind the tensor reads: measured on
the GPU machine, the import then took 8.6–11.9 s instead of 5.0–5.7 s. So a profile records which byte ranges of
which files a process that had imported torch used (``/proc/self/pagemap``: the present bit of every page of every
mapped shared library, readable without root, plus the bytecode files of the imported modules); the next build
has those ranges read first and only then starts on the tensors, while the import runs from memory. Every range is
handed to the kernel as read-ahead (``posix_fadvise(WILLNEED)``: the reads are queued together instead of one small
read-ahead window at a time; plain reads in file order where the advice is not taken).

Profile: ``$LORAG_IMPORT_PAGES`` (a path; "0" or empty turns the whole thing off), else
``$XDG_CACHE_HOME/lorag/import-pages.json``, else ``~/.cache/lorag/import-pages.json``. Written by
``single_pass.record_import_pages()`` (scripts/install.sh runs it once) and after a build when missing or stale (a file
in it changed size or mtime). Linux only; elsewhere every function here is a no-op.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

VERSION = 1
GAP = 1 << 20  # ranges closer than this are read as one (a read through a gap costs less than another request)
CHUNK = 4 << 20  # bytes per read while preloading
LIMIT = 3 << 30  # a profile never asks for more than this: past it, reading ahead costs more than the faults

done_at = 0.0  # time.monotonic() when this process's last preload finished


def profile_path() -> Path | None:
    """Where the profile lives, or None when preloading is turned off."""
    raw = os.environ.get("LORAG_IMPORT_PAGES")
    if raw is not None:
        return Path(raw).expanduser() if raw.strip() not in ("", "0") else None
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "lorag" / "import-pages.json"


def record(path: Path | None = None) -> Path | None:
    """Write the profile of what this process has mapped and imported; returns its path (None: not possible here)."""
    path = path or profile_path()
    if path is None or not Path("/proc/self/pagemap").is_file():
        return None
    from lorag.atomic import atomic_write_text

    files = [*_bytecode(), *_mapped()]
    kept, total = [], 0
    for entry in files:
        size = sum(length for _, length in entry["ranges"])
        if total + size > LIMIT:
            break
        kept.append(entry)
        total += size
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"version": VERSION, "bytes": total, "files": kept}) + "\n")
    return path


def is_current(path: Path | None = None) -> bool:
    """Whether a profile exists and every file in it is unchanged (else a build records a new one)."""
    files = _load(path or profile_path())
    return files is not None and all(_unchanged(f) for f in files)


_started: threading.Event | None = None  # this process's preload, once begun


def start(path: Path | None = None) -> threading.Event | None:
    """Begin preloading on a thread; the event is set when done. None: no profile (or off), nothing started.

    A command calls it as its first step, before importing the build (the disk works while Python imports); the
    build calls it again and gets the same event. With torch already imported and nothing begun (a second build in
    one process) there is nothing to wait for: a set event.
    """
    global _started
    if _started is not None:
        return _started
    if "torch" in sys.modules:
        done = threading.Event()
        done.set()
        return done
    files = _load(path or profile_path())
    if not files:
        return None
    _started = threading.Event()
    threading.Thread(target=_read_all, args=(files, _started), name="lorag-preload", daemon=True).start()
    return _started


def _read_all(files: list[dict[str, Any]], done: threading.Event) -> None:
    global done_at
    try:
        entries = [entry for entry in files if _unchanged(entry)]
        if not _advise(entries):  # no read-ahead advice here: read the ranges ourselves, in file order
            buffer = bytearray(CHUNK)
            _each_range(entries, lambda fd, start, length: _read_range(fd, buffer, start, length))
    finally:
        done_at = time.monotonic()
        done.set()


def _advise(entries: list[dict[str, Any]]) -> bool:
    """Queue every range as kernel read-ahead; False when this system takes no such advice.

    The call returns once the kernel has queued the reads (it blocks while the disk's queue is full), so when it is
    done the import's pages are in memory or ahead of any read queued after them: the gate can open.
    """
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return False
    try:
        _each_range(entries, lambda fd, start, length: advise(fd, start, length, os.POSIX_FADV_WILLNEED))
    except OSError:
        return False  # a filesystem that refuses the advice: the caller reads instead
    return True


def _each_range(entries: list[dict[str, Any]], action: Callable[[int, int, int], Any]) -> None:
    """``action(fd, start, length)`` for every range of every file that opens, in the profile's order."""
    for entry in entries:
        try:
            fd = os.open(entry["path"], os.O_RDONLY)
        except OSError:
            continue
        try:
            for start, length in entry["ranges"]:
                action(fd, start, length)
        finally:
            os.close(fd)


def _read_range(fd: int, buffer: bytearray, start: int, length: int) -> None:
    view = memoryview(buffer)
    end = start + length
    while start < end:
        try:
            got = os.preadv(fd, [view[: min(CHUNK, end - start)]], start)
        except OSError:
            return
        if got <= 0:
            return
        start += got


def _load(path: Path | None) -> list[dict[str, Any]] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"] if data.get("version") == VERSION else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return files if isinstance(files, list) else None


def _unchanged(entry: dict[str, Any]) -> bool:
    try:
        st = os.stat(entry["path"])
    except (OSError, KeyError, TypeError):
        return False
    return st.st_size == entry.get("size") and st.st_mtime_ns == entry.get("mtime_ns")


def _stat_entry(path: str, ranges: list[list[int]]) -> dict[str, Any] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ranges": ranges}


def _bytecode() -> list[dict[str, Any]]:
    """The imported modules' bytecode files, whole (they are small and read whole)."""
    out = []
    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)
        cached = getattr(spec, "cached", None) if spec is not None else None
        if isinstance(cached, str) and os.path.isfile(cached):
            entry = _stat_entry(cached, [[0, os.path.getsize(cached)]])
            if entry is not None:
                out.append(entry)
    return out


def _mapped() -> list[dict[str, Any]]:
    """Each mapped shared library's resident byte ranges, libraries in the order the loader mapped them."""
    import numpy as np

    page = os.sysconf("SC_PAGE_SIZE")
    pages: dict[str, set[int]] = {}
    first_seen: dict[str, int] = {}
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps, \
            open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
        for line in maps:
            parts = line.split(maxsplit=5)
            if len(parts) < 6 or ".so" not in parts[5] or not parts[5].startswith("/"):
                continue
            name = parts[5].strip()
            if name.endswith("(deleted)"):
                continue
            low, high = (int(x, 16) for x in parts[0].split("-"))
            pagemap.seek(low // page * 8)
            raw = pagemap.read((high - low) // page * 8)
            present = np.flatnonzero(np.frombuffer(raw, dtype="<u8") >> np.uint64(63))
            first = int(parts[2], 16) // page
            pages.setdefault(name, set()).update((present + first).tolist())
            first_seen[name] = max(first_seen.get(name, 0), high)
    # mmap places later libraries at lower addresses: highest first is the loader's order
    out = []
    for name in sorted(pages, key=lambda n: -first_seen[n]):
        entry = _stat_entry(name, _ranges(sorted(pages[name]), page))
        if entry is not None and entry["ranges"]:
            out.append(entry)
    return out


def _ranges(pages: list[int], page: int) -> list[list[int]]:
    """Sorted page numbers → [offset, length] byte ranges, joining ranges closer than GAP."""
    out: list[list[int]] = []
    for p in pages:
        offset = p * page
        if out and offset - (out[-1][0] + out[-1][1]) <= GAP:
            out[-1][1] = offset + page - out[-1][0]
        else:
            out.append([offset, page])
    return out
