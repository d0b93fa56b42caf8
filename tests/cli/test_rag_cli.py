"""The real `lorag` command in a subprocess: init, ingest, search, ask, remove, and its error lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rag.documents import make_corpus


def lorag(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lorag ARGS`` in ``cwd`` without $LORAG_CONFIG (so ./lorag.yaml or defaults apply)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}
    base.update(env or {}, HF_HUB_OFFLINE="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "lorag", *args], cwd=cwd, env=base, capture_output=True,
                          text=True, timeout=600)


def assert_one_error_line(proc: subprocess.CompletedProcess[str], text: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], proc.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with no lorag.yaml, holding a mixed corpus that has been ingested with the defaults."""
    root = tmp_path_factory.mktemp("cli")
    make_corpus(root / "docs")
    proc = lorag("ingest", "docs", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert (root / ".lorag" / "lorag.db").exists()  # default store path, relative to ./lorag.yaml
    return root


def test_init_writes_config_and_refuses_to_overwrite(tmp_path: Path) -> None:
    proc = lorag("init", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.splitlines()[0] == f"wrote {tmp_path / 'lorag.yaml'}"
    assert "chunk_chars: 400" in (tmp_path / "lorag.yaml").read_text(encoding="utf-8")
    assert_one_error_line(lorag("init", cwd=tmp_path), "lorag.yaml already exists. Use --force")
    assert lorag("init", "--force", cwd=tmp_path).returncode == 0
    assert (tmp_path / "lorag.yaml.bak").exists()


def test_ingest_summary_and_idempotence(workspace: Path) -> None:
    proc = lorag("ingest", "docs", cwd=workspace)
    assert proc.returncode == 0, proc.stderr
    rows = {label.strip(): value for label, _, value in
            (line.strip().rpartition(" ") for line in proc.stdout.splitlines()[1:] if line.strip())}
    assert {k: v for k, v in rows.items() if k not in ("seconds", "chunks/s")} == {
        "added": "0", "updated": "0", "unchanged": "6", "removed": "0", "failed": "0", "pages": "0",
        "OCR pages": "0", "front matter pages skipped": "0", "chunks": "0"}


def test_search_json(workspace: Path) -> None:
    proc = lorag("search", "人間ドックは会社負担ですか", "--top-k", "2", "--json", cwd=workspace)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert [h["rank"] for h in hits] == [1, 2]
    assert set(hits[0]) == {"rank", "score", "source", "page", "start", "end", "text"}
    assert hits[0]["source"].endswith("福利厚生.html") and "人間ドック" in hits[0]["text"]


def test_search_text_output(workspace: Path) -> None:
    proc = lorag("search", "日当", "-k", "1", cwd=workspace)
    assert proc.returncode == 0 and proc.stdout.startswith("1. docs/出張.pdf p.2 (")


def test_failed_files_give_a_non_zero_exit(workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "data.bin.txt").write_bytes(b"\x00\xff" * 100)
    proc = lorag("ingest", str(tmp_path / "empty.txt"), str(tmp_path / "data.bin.txt"), str(tmp_path / "no.md"),
                 str(tmp_path / "x.csv"), cwd=workspace)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    failed = sorted(line for line in proc.stderr.splitlines() if line.startswith("failed:"))
    assert len(failed) == 4
    assert any(line.endswith("empty.txt is empty.") for line in failed)
    assert any("looks like a binary file" in line for line in failed)
    assert any(line.endswith("no.md does not exist.") for line in failed)
    search = json.loads(lorag("search", "empty", "--json", "-k", "20", cwd=workspace).stdout)
    assert all(str(tmp_path) not in h["source"] for h in search)


def test_remove(workspace: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra.md"
    extra.write_text("一時的な文書です。\n", encoding="utf-8")
    assert lorag("ingest", str(extra), cwd=workspace).returncode == 0
    proc = lorag("remove", str(extra), cwd=workspace)
    assert proc.returncode == 0 and proc.stdout.strip() == "removed 1 document"
    assert lorag("remove", str(extra), cwd=workspace).stdout.strip() == "removed 0 documents"


def test_read_only_store_is_one_red_line(tmp_path: Path) -> None:
    (tmp_path / "lorag.yaml").write_text("store:\n  path: /proc/sys/lorag.db\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("テスト", encoding="utf-8")
    assert_one_error_line(lorag("ingest", "a.txt", cwd=tmp_path), "the store /proc/sys/lorag.db is read-only")


def test_invalid_config_is_one_red_line(tmp_path: Path) -> None:
    (tmp_path / "lorag.yaml").write_text("ingest:\n  chunk_chars: 5\n", encoding="utf-8")
    assert_one_error_line(lorag("search", "x", cwd=tmp_path), "ingest.chunk_chars")


@pytest.mark.slow
def test_ask_end_to_end_with_the_bundled_model(workspace: Path) -> None:
    proc = lorag("ask", "経費はいつまでに申請すればよいですか？", "--top-k", "3", cwd=workspace)
    assert proc.returncode == 0, proc.stderr
    answer, _, sources = proc.stdout.partition("\n出典:\n")
    assert answer.strip()
    lines = sources.splitlines()
    # At most --top-k sources: the relevance cutoff leaves out the ones unrelated to the question.
    assert 1 <= len(lines) <= 3 and lines[0].startswith("  [1] docs/")
    assert "(chars " in lines[0]


def test_init_writes_a_private_api_token(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "lorag", "-c", str(tmp_path / "lorag.yaml"), "init"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    token = tmp_path / ".lorag" / "token"
    assert token.stat().st_mode & 0o777 == 0o600
    assert len(token.read_text(encoding="utf-8").strip()) >= 32
