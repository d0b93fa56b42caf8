"""Content-addressed build artifacts: file hashes cached by (path, size, mtime), build keys and build locks.

Every temporary build folder is named after the lock its build holds, so cleaning up after interrupted builds
(``clean_stale_builds``) never touches the files of a build that is still running, in this process or another.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lorag.atomic import TMP_PREFIX, atomic_write_text
from lorag.errors import BuildError

HASH_CACHE_NAME = ".hash-cache.json"
PIPELINE_VERSION = "1"  # bump when lorag's own merge/convert steps change what they write
_CHUNK = 8 * 1024 * 1024


def sha256_file(path: Path, cache_dir: Path | None = None, on_bytes: Callable[[int], None] | None = None) -> str:
    """SHA-256 of a file's contents, remembered by (path, size, mtime) so unchanged files hash instantly."""
    path = path.resolve()
    st = path.stat()
    stamp = f"{st.st_size}:{st.st_mtime_ns}"
    cache = _load(cache_dir)
    entry = cache.get(str(path))
    if entry and entry.get("stamp") == stamp:
        return str(entry["sha256"])
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            if on_bytes:
                on_bytes(len(chunk))
    hexdigest = digest.hexdigest()
    if cache_dir is not None:
        cache = _load(cache_dir)  # re-read: another build may have added entries meanwhile
        cache[str(path)] = {"stamp": stamp, "sha256": hexdigest}
        _save(cache_dir, cache)
    return hexdigest


def hash_tree(directory: Path, cache_dir: Path | None = None, on_bytes: Callable[[int], None] | None = None) -> str:
    """One digest for the files directly in a directory (names and contents), following symlinks.

    Subfolders are left out: the converter and the merge read only top-level files, and model repos often
    carry large extras there (``original/``, ``checkpoint-*/``).
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        if path.name.startswith(".") or path.name == "README.md":
            continue
        digest.update(path.name.encode() + b"\0" + sha256_file(path, cache_dir, on_bytes).encode() + b"\n")
    return digest.hexdigest()


def build_key(parts: dict[str, str]) -> str:
    """Digest of everything that determines a build's output."""
    text = json.dumps({**parts, "pipeline": PIPELINE_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _load(cache_dir: Path | None) -> dict[str, dict[str, str]]:
    if cache_dir is None:
        return {}
    try:
        data = json.loads((cache_dir / HASH_CACHE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(cache_dir: Path, cache: dict[str, dict[str, str]]) -> None:
    # The cache only saves time; a read-only output dir must not fail the build here.
    with contextlib.suppress(OSError):
        atomic_write_text(cache_dir / HASH_CACHE_NAME, json.dumps(cache, indent=1, sort_keys=True))


@contextlib.contextmanager
def build_lock(output_dir: Path, name: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold ``<output_dir>/.<name>.lock``; wait up to ``wait_s`` for another build, then fail clearly."""
    path = output_dir / f".{name}.lock"
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only or foreign folder: one line, not a traceback
        raise BuildError(f"cannot write the build lock {path}: {exc.strerror or exc}.",
                         "Pass --output with a writable directory (or fix its permissions).") from exc
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BuildError(f"a build of this model ({name}) is already running.",
                                     f"Wait for it to finish (lock: {path}).") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock


def clean_stale_builds(output_dir: Path) -> int:
    """Remove temp dirs of interrupted builds; a dir whose build still holds its lock is left alone."""
    removed = 0
    # Build dirs: .lorag-tmp-<name>-<random>/ ; partial base conversions: bases/.lorag-tmp-<name>-<random>.gguf
    for folder, want_dir in ((output_dir, True), (output_dir / "bases", False)):
        for entry in folder.glob(TMP_PREFIX + "*") if folder.is_dir() else []:
            if entry.is_dir() != want_dir:
                continue
            lock_name = entry.name[len(TMP_PREFIX):].rsplit("-", 1)[0]
            with _try_lock(folder / f".{lock_name}.lock") as free:
                if not free:
                    continue
                if want_dir:
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed += 1
    return removed


@contextlib.contextmanager
def _try_lock(path: Path) -> Iterator[bool]:
    if not path.exists():
        yield True
        return
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        yield False
        return
    try:
        yield True
    finally:
        os.close(fd)
