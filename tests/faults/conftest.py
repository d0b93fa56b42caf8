"""Fault injection with real components: small tmpfs mounts (full, read-only), real sockets, the real `lorag` CLI.

Mounting needs root (CI has it); where mount is not permitted the tests that need it are skipped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

class Mount:
    """A tmpfs of a given size at ``path``; fill it, free it, make it read-only or writable again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler.bin"

    def fill(self, leave_bytes: int = 0) -> None:
        """Write a filler file until the disk is full, then free ``leave_bytes`` again."""
        block = b"\0" * 4096
        with open(self.filler, "ab", buffering=0) as fh:
            try:
                while True:
                    fh.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        if leave_bytes:
            size = self.filler.stat().st_size
            os.truncate(self.filler, max(0, size - leave_bytes))

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def read_only(self, on: bool = True) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.path)], check=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    """A 4 MiB tmpfs mounted for this test (skipped where mounting is not permitted)."""
    path = tmp_path / "mnt"
    path.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(path)],
                              capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, PermissionError):
        pytest.skip("mount is not available here")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield Mount(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def lorag(*args: str, cwd: Path, env: dict[str, str] | None = None,
          timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real `lorag` command in a subprocess, with no LORAG_* variables but those given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}
    # PYTHONPATH: the checkout under test, not whichever lorag the venv has installed.
    base.update(HF_HUB_OFFLINE="1", COLUMNS="400", XDG_CACHE_HOME=str(cwd / ".cache-home"), PYTHONPATH=str(REPO))
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "lorag", *args], cwd=cwd, env=base, capture_output=True,
                          text=True, timeout=timeout)


def one_error_line(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The single `error:` or `failed:` line of a failed command (and no traceback, no other line on stderr)."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(("error: ", "failed: ")), proc.stderr
    return lines[0]


def documents(store: Path, immutable: bool = False) -> list[tuple[str, str, int]]:
    """(path, sha256, chunks) of each stored document, read with plain sqlite3 (not lorag's code).

    ``immutable`` for a store on a read-only disk (SQLite cannot create the WAL index there); settle() it first.
    """
    db = sqlite3.connect(f"file:{store}?mode=ro{'&immutable=1' if immutable else ''}", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [tuple(r) for r in db.execute("SELECT path, sha256, n_chunks FROM documents ORDER BY path")]
    finally:
        db.close()


def settle(store: Path) -> None:
    """Checkpoint and close the store, so SQLite removes its -wal and -shm files (a fresh open must create them)."""
    db = sqlite3.connect(store)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    assert not store.with_name(store.name + "-shm").exists()


FAST_CONFIG = "store:\n  path: .lorag/lorag.db\nretrieval:\n  embedder: none\n"  # BM25 only: no model to load


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on loopback that accepts connections and never answers: ``http://127.0.0.1:PORT``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


@pytest.fixture
def closed_port() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens (connection refused)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"
