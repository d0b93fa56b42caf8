"""kill -9 in the middle of a config write or an ingest: the files stay whole, the next run picks up cleanly.

A child process runs the real `lorag` entry point, paused at the worst moment (the config's temp file written but
not yet renamed; an ingest transaction half written); the test then kills it with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.faults.conftest import FAST_CONFIG, REPO, documents, lorag

PAUSE_BEFORE_RENAME = """
import os, sys, time
real_replace = os.replace
def paused(src, dst):
    if str(dst).endswith("lorag.yaml"):
        print("RENAMING", flush=True)
        time.sleep(60)
    real_replace(src, dst)
os.replace = paused
from lorag.cli import main
main(sys.argv[1:])
"""

PAUSE_IN_TRANSACTION = """
import sqlite3, sys, time
# Watch the store's own SQL (whatever lorag's code looks like): pause inside the transaction of the second document,
# once a first one is committed.
real_connect = sqlite3.connect
state = {"committed": 0, "open": False}
def trace(sql):
    s = sql.lstrip().upper()
    if s.startswith("INSERT INTO DOCUMENTS"):
        state["open"] = True
    elif s.startswith("COMMIT") and state["open"]:
        state["committed"] += 1
        state["open"] = False
    elif s.startswith("INSERT INTO CHUNKS") and state["open"] and state["committed"]:
        print("IN-TRANSACTION", flush=True)
        time.sleep(60)
def connect(*args, **kwargs):
    db = real_connect(*args, **kwargs)
    db.set_trace_callback(trace)
    return db
sqlite3.connect = connect
from lorag.cli import main
main(sys.argv[1:])
"""


def killed_at(script: str, marker: str, args: list[str], cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", XDG_CACHE_HOME=str(cwd / ".cache-home"))
    proc = subprocess.Popen([sys.executable, "-c", script, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == marker
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_kill9_during_a_config_write(tmp_path: Path) -> None:
    config = tmp_path / "lorag.yaml"
    config.write_text(FAST_CONFIG, encoding="utf-8")
    killed_at(PAUSE_BEFORE_RENAME, "RENAMING", ["init", "--force"], tmp_path)
    assert config.read_text(encoding="utf-8") == FAST_CONFIG
    assert (tmp_path / "lorag.yaml.bak").read_text(encoding="utf-8") == FAST_CONFIG  # the backup is whole
    [stale] = tmp_path.glob(".lorag-tmp-*")  # the new text, never renamed
    assert stale.read_text(encoding="utf-8").startswith("# lorag configuration.")
    proc = lorag("init", "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert config.read_text(encoding="utf-8").startswith("# lorag configuration.")


def test_kill9_during_an_ingest(tmp_path: Path) -> None:
    (tmp_path / "lorag.yaml").write_text(FAST_CONFIG, encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, name in enumerate(("a.txt", "b.txt", "c.txt")):
        (docs / name).write_text(f"文書{i}です。" + "経費は翌月10日までに申請します。" * 30 + "\n", encoding="utf-8")
    killed_at(PAUSE_IN_TRANSACTION, "IN-TRANSACTION", ["ingest", "docs"], tmp_path)
    store = tmp_path / ".lorag" / "lorag.db"
    stored = documents(store)  # integrity_check passes
    assert 1 <= len(stored) < 3  # what was committed is there; the document being written is not
    assert all(n > 0 for _, _, n in stored)
    db = sqlite3.connect(store)
    counts = dict(db.execute("SELECT d.path, COUNT(c.id) FROM documents d JOIN chunks c ON c.doc_id = d.id "
                             "GROUP BY d.path").fetchall())
    db.close()
    assert {p: n for p, _, n in stored} == counts  # each stored document has all of its chunks
    proc = lorag("ingest", "docs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [Path(p).name for p, _, _ in documents(store)] == ["a.txt", "b.txt", "c.txt"]
