"""A bug deep inside a real command run: one line naming the failure and the log file that holds the traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.conftest import FAST_CONFIG, REPO, lorag

BROKEN_TOKENIZER = """
import sys
import lorag.rag.japanese as japanese
def broken(*args, **kwargs):
    raise IndexError("list index out of range")
for name in ("tokenize", "tokenize_many", "_sudachi_tokens", "_fugashi_tokens"):
    setattr(japanese, name, broken)
from lorag.cli import main
main(sys.argv[1:])
"""


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", XDG_CACHE_HOME=str(tmp_path / "cache"), COLUMNS="400")
    return subprocess.run([sys.executable, "-c", BROKEN_TOKENIZER, *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def ingested(tmp_path: Path) -> Path:
    (tmp_path / "lorag.yaml").write_text(FAST_CONFIG, encoding="utf-8")
    (tmp_path / "a.txt").write_text("有給休暇は年20日です。\n", encoding="utf-8")
    assert lorag("ingest", "a.txt", cwd=tmp_path).returncode == 0
    return tmp_path


def test_bug_in_search_is_one_line_and_a_log(ingested: Path) -> None:
    tmp_path = ingested
    proc = run(tmp_path, "search", "有給休暇")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    [log] = (tmp_path / "cache" / "lorag" / "logs").glob("lorag-*.log")
    assert line == (f"error: `lorag search` failed unexpectedly (IndexError: list index out of range). This is a bug "
                    f"in lorag: the traceback is in {log}; please include it when you report the problem.")
    text = log.read_text(encoding="utf-8")
    assert text.startswith("time: ") and "context: `lorag search`" in text
    assert 'File "<string>", line 5, in broken' in text
    assert text.rstrip().endswith("IndexError: list index out of range")


def test_verbose_prints_the_traceback(ingested: Path) -> None:
    proc = run(ingested, "-v", "search", "有給休暇")
    assert proc.returncode == 1
    assert "Traceback (most recent call last):" in proc.stderr and "IndexError: list index out of range" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("error: `lorag search` failed unexpectedly (IndexError")
