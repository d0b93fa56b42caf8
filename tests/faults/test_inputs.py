"""Bad questions through the real `lorag` command are refused at once, with the limit /api and /v1 use."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorag.limits import MAX_QUESTION_CHARS
from tests.faults.conftest import FAST_CONFIG, lorag, one_error_line


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "lorag.yaml").write_text(FAST_CONFIG, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("command", "what"), [("ask", "question"), ("search", "query")])
@pytest.mark.parametrize("text", ["", "   ", "\n\t　"])
def test_empty_text_is_refused(folder: Path, command: str, what: str, text: str) -> None:
    line = one_error_line(lorag(command, text, cwd=folder), code=2)
    assert line.startswith(f"error: the {what} is empty. Give some text, e.g. `lorag {command} ")
    assert not (folder / ".lorag").exists()  # refused before the store was opened


@pytest.mark.parametrize(("command", "what"), [("ask", "question"), ("search", "query")])
def test_over_long_text_is_refused_with_the_limit(folder: Path, command: str, what: str) -> None:
    line = one_error_line(lorag(command, "質" * (MAX_QUESTION_CHARS + 1), cwd=folder), code=2)
    assert line == (f"error: the {what} is 4,001 characters; the limit is 4,000. Shorten it: long text belongs in a "
                    f"document (`lorag ingest FILE`), not in a {what}.")
    assert not (folder / ".lorag").exists()


def test_text_at_the_limit_is_accepted(folder: Path) -> None:
    proc = lorag("search", "質" * MAX_QUESTION_CHARS, cwd=folder)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("command", ["ask", "search"])
def test_top_k_has_the_api_range(folder: Path, command: str) -> None:
    proc = lorag(command, "有給", "--top-k", "101", cwd=folder)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: --top-k must be between 1 and 100 (it is 101)."


def test_undecodable_bytes_are_refused(folder: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.faults.conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "LC_ALL": "C.UTF-8"}
    env.pop("LORAG_CONFIG", None)
    proc = subprocess.run([sys.executable, "-m", "lorag", "search", os.fsdecode(b"\xff\xfe\x93\xfa")], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=300)
    line = one_error_line(proc, code=2)
    assert line == ("error: the query is not valid text (undecodable byte at character 1). Check the terminal's "
                    "encoding (LANG=ja_JP.UTF-8 or C.UTF-8).")
