"""The real `lorag` command: collections, documents, search --collection, remove (NFC/NFD), store migrate."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np

from lorag.config import init_config, load_config, update_config
from lorag.rag.store import NewChunk, Store
from tests.cli.test_rag_cli import assert_one_error_line, lorag


def make_project(root: Path) -> tuple[Path, str]:
    """A project whose store holds a default and a 人事 document; the 人事 one is stored under its NFD name."""
    init_config(root / "lorag.yaml")
    update_config(root / "lorag.yaml", {"retrieval.embedder": "none"})
    nfd = unicodedata.normalize("NFD", str(root / "docs" / "ガイド.txt"))
    with Store(load_config(root / "lorag.yaml").store_path) as store:
        with store.transaction():
            store.set_meta("embedder", "none")
            store.set_meta("tokenizer", "sudachi")
        store.replace_document(str(root / "docs" / "経費.txt"), "a", 0.0, 1, [
            NewChunk("経費は翌月10日までに申請します。", None, 0, 17, ["経費", "翌月", "10", "日", "申請"], None)],
            meta={"pages": 1})
        store.replace_document(nfd, "b", 0.0, 1, [
            NewChunk("有給休暇は年20日です。", None, 0, 12, ["有給", "休暇", "年", "20", "日"], np.zeros(0))],
            collection="人事")
    return root, nfd


def test_collections_documents_and_scoped_search(tmp_path: Path) -> None:
    root, _ = make_project(tmp_path)
    proc = lorag("collections", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"name": "default", "documents": 1, "chunks": 1},
                                       {"name": "人事", "documents": 1, "chunks": 1}]
    table = lorag("collections", cwd=root).stdout.splitlines()
    assert [line.split() for line in table] == [["collection", "documents", "chunks"], ["default", "1", "1"],
                                                ["人事", "1", "1"]]
    docs = json.loads(lorag("documents", "--collection", "人事", "--json", cwd=root).stdout)
    assert [(d["collection"], d["n_chunks"]) for d in docs] == [("人事", 1)]
    listing = lorag("documents", cwd=root).stdout.splitlines()
    assert listing[0].split() == ["path", "collection", "chunks", "pages", "added"]
    rows = [unicodedata.normalize("NFC", line).split()[:4] for line in listing[1:]]
    assert rows == [["docs/ガイド.txt", "人事", "1", "-"], ["docs/経費.txt", "default", "1", "1"]]
    hits = json.loads(lorag("search", "日", "--collection", "人事", "--json", cwd=root).stdout)
    assert [h["text"] for h in hits] == ["有給休暇は年20日です。"]
    hits = json.loads(lorag("search", "日", "--json", cwd=root).stdout)
    assert sorted(h["text"] for h in hits) == ["有給休暇は年20日です。", "経費は翌月10日までに申請します。"]


def test_bad_collection_names_are_one_line(tmp_path: Path) -> None:
    root, _ = make_project(tmp_path)
    for name, why in (("../x", "contains '/'"), ("a" * 300, "is 300 characters long; at most 64")):
        for args in (("documents", "--collection", name), ("search", "x", "--collection", name)):
            assert_one_error_line(lorag(*args, cwd=root), why)


def test_remove_with_the_nfc_spelling_of_an_nfd_name(tmp_path: Path) -> None:
    root, nfd = make_project(tmp_path)
    nfc = unicodedata.normalize("NFC", nfd)
    assert nfc != nfd
    proc = lorag("remove", nfc, cwd=root)
    assert proc.returncode == 0 and proc.stdout.strip() == "removed 1 document", proc.stderr
    with Store(load_config(root / "lorag.yaml").store_path) as store:
        assert [d.collection for d in store.list_documents()] == ["default"]


def test_store_migrate_and_switch(tmp_path: Path) -> None:
    root, _ = make_project(tmp_path)
    target = tmp_path / "copy" / "lorag.db"
    proc = lorag("store", "migrate", "--to", f"sqlite://{target}", "--switch", cwd=root)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"copied 2 of 2 documents (2 chunks) to sqlite://{target}"
    assert lines[1].startswith("verified: counts equal, content checksum ")
    assert load_config(root / "lorag.yaml").settings.store.url == f"sqlite://{target}"
    assert json.loads(lorag("collections", "--json", cwd=root).stdout)[1] == {"name": "人事", "documents": 1,
                                                                           "chunks": 1}
    assert_one_error_line(lorag("store", "migrate", "--to", f"sqlite://{target}", cwd=root),
                          "the source and the target of the migration are the same store")
