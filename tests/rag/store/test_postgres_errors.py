"""PostgreSQL faults as the user meets them: one line naming the cause and what to do, never a traceback."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from lorag.errors import StoreError
from lorag.rag.store import Store


def test_unreachable_server() -> None:
    with pytest.raises(StoreError) as err:
        Store("postgresql://lorag:secret@127.0.0.1:1/lorag")
    text = str(err.value)
    assert text.startswith("cannot reach PostgreSQL at postgresql://lorag:***@127.0.0.1:1/lorag (")
    assert text.endswith("Start the server, or fix the host and port in store.url.") and "secret" not in text


@pytest.fixture
def password_role(pg_server: object, pg_url: str) -> str:
    """A role that must log in with a password (the session server trusts everyone else)."""
    psql = pg_server.psql  # type: ignore[attr-defined]
    psql("DO $$ BEGIN CREATE ROLE lorag_pw LOGIN PASSWORD 'right'; EXCEPTION WHEN duplicate_object THEN NULL; "
         "END $$;")
    hba = Path(psql("SHOW hba_file;").splitlines()[2].strip())
    rules = hba.read_text()
    if "lorag_pw" not in rules:
        hba.write_text("local all lorag_pw scram-sha-256\n" + rules)
        psql("SELECT pg_reload_conf();")
    return pg_url.replace("postgresql://postgres:", "postgresql://lorag_pw:", 1)


def test_wrong_password(password_role: str) -> None:
    url = password_role.replace("lorag_pw:", "lorag_pw:wrong", 1)
    with pytest.raises(StoreError) as err:
        Store(url)
    assert str(err.value) == (f"PostgreSQL at {url.replace(':wrong@', ':***@')} refused the user name or "
                              "password. Fix the user and password in store.url (or set PGPASSWORD).")


def test_pgvector_that_this_user_may_not_enable(pg_server: object, password_role: str) -> None:
    # A fresh database without the extension, and a user who is no superuser: CREATE EXTENSION is refused.
    pg_server.psql("CREATE DATABASE novector OWNER lorag_pw;")  # type: ignore[attr-defined]
    url = re.sub(r"@/[^?]+\?", "@/novector?", password_role.replace("lorag_pw:", "lorag_pw:right", 1))
    with pytest.raises(StoreError) as err:
        Store(url)
    assert "the pgvector extension is not enabled in the database at" in str(err.value)
    assert str(err.value).endswith("Ask an administrator to run `CREATE EXTENSION vector;` in that database once.")


def test_store_from_a_newer_lorag_is_refused(pg_url: str) -> None:
    with Store(pg_url) as store:
        store._db.execute("UPDATE lorag_schema SET version = 7")
        store.set_meta("lorag_version", "2.0.0")
    with pytest.raises(StoreError, match=r"was written by lorag 2\.0\.0 with schema version 7; this lorag \(0\.1\.0\) "
                                         r"reads schema versions up to 3\. Upgrade lorag"):
        Store(pg_url)


NO_VECTOR_SERVER = """
import sys, tempfile, os, shutil, warnings
warnings.simplefilter("ignore")
import pgserver
data = tempfile.mkdtemp(prefix="lorag-pg-novec-")
os.chmod(data, 0o755)
server = pgserver.get_server(data, cleanup_mode="stop")
print(server.get_uri(), flush=True)
sys.stdin.read()  # keep serving until the test closes stdin
server.cleanup()
shutil.rmtree(data, ignore_errors=True)
"""


def test_server_without_pgvector() -> None:
    import os
    import shutil
    import subprocess
    import sys

    pgserver = pytest.importorskip("pgserver")
    # A copy of the bundled PostgreSQL with the pgvector files taken out: a server that never had it.
    # Outside pytest's 0700 temp dirs: pgserver runs the binaries as its own user when started by root.
    site = Path(tempfile.mkdtemp(prefix="lorag-novec-site-"))
    site.chmod(0o755)
    package = Path(pgserver.__file__).parent
    shutil.copytree(package, site / "pgserver")
    if (package.parent / "pgserver.libs").is_dir():  # the shared libraries the wheel's binaries link to
        shutil.copytree(package.parent / "pgserver.libs", site / "pgserver.libs")
    for f in (site / "pgserver").rglob("vector*"):
        if f.is_file():
            f.unlink()
    proc = subprocess.Popen([sys.executable, "-c", NO_VECTOR_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(site)})
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        with pytest.raises(StoreError) as err:
            Store(url)
        text = str(err.value)
        assert text.startswith("the PostgreSQL server at postgresql://postgres:")
        assert "has no pgvector extension" in text
        assert text.endswith("Install pgvector on the server (e.g. apt install postgresql-17-pgvector, or the "
                             "pgvector/pgvector Docker image), then run `CREATE EXTENSION vector;` in the database.")
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(site, ignore_errors=True)
