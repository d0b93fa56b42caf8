"""The Store contract, run against both peers: SQLite and a real PostgreSQL with pgvector."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest

from lorag.errors import StoreError
from lorag.rag.store import CollectionInfo, CollectionNameError, NewChunk, Store, validate_collection
from tests.rag.store.conftest import PGVECTOR_RUNS_HERE


def vectors_here(store: Store) -> bool:
    return not str(store.path).startswith("postgresql") or PGVECTOR_RUNS_HERE


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def chunk(text: str, tokens: list[str], vector: np.ndarray | None, page: int | None = None) -> NewChunk:
    return NewChunk(text, page, 0, len(text), tokens, vector)


def fill(store: Store) -> tuple[int, int]:
    """Two documents: /d/a.txt (default, 2 chunks) and /d/人事.txt (collection 人事, 1 chunk)."""
    v = vectors_here(store)
    a = store.replace_document("/d/a.txt", "aaa", 1.5, 10, [
        chunk("休暇の申請", ["休暇", "申請"], unit(1, 0, 0) if v else None, page=1),
        chunk("経費の申請と精算", ["経費", "申請", "精算", "経費"], unit(0, 1, 0) if v else None, page=2)],
        meta={"pages": 2})
    b = store.replace_document("/d/人事.txt", "bbb", 2.5, 20, [
        chunk("休暇は年20日", ["休暇", "年", "20", "日"], unit(1, 1, 0) if v else None)], collection="人事")
    return a, b


def test_documents_chunks_and_revision(store: Store) -> None:
    assert store.revision() == 0 and store.collections() == []
    a, _ = fill(store)
    assert store.revision() == 2
    docs = store.list_documents()
    assert [(d.path, d.collection, d.n_chunks, d.sha256, d.mtime, d.size) for d in docs] == [
        ("/d/a.txt", "default", 2, "aaa", 1.5, 10), ("/d/人事.txt", "人事", 1, "bbb", 2.5, 20)]
    assert docs[0].meta == {"pages": 2} and docs[1].meta == {}
    assert [d.path for d in store.list_documents(collection="人事")] == ["/d/人事.txt"]
    assert store.collections() == [CollectionInfo("default", 1, 2), CollectionInfo("人事", 1, 1)]
    assert store.count_chunks() == 3 and store.count_chunks("人事") == 1
    c2 = store.document_chunks(a)[1]
    assert (c2.text, c2.tokens, c2.page, c2.end) == ("経費の申請と精算", ["経費", "申請", "精算", "経費"], 2, 8)
    ids = [cid for cid, _ in store.lexical_search(["申請"], 5)]
    assert [c.text for c in store.get_chunks(ids)] == ["休暇の申請", "経費の申請と精算"]
    store.delete_document(a)
    assert [d.path for d in store.list_documents()] == ["/d/人事.txt"] and store.count_chunks() == 1
    assert store.lexical_search(["申請"], 5) == [] and store.revision() == 3
    with pytest.raises(StoreError, match="chunk 999 is not in the store"):
        store.get_chunk(999)


def test_replacing_a_document_replaces_its_chunks(store: Store) -> None:
    fill(store)
    store.replace_document("/d/a.txt", "new", 3.0, 5, [chunk("新しい規程", ["新しい", "規程"], None)])
    first = store.list_documents()[0]
    assert (first.path, first.sha256, first.n_chunks) == ("/d/a.txt", "new", 1)
    assert store.lexical_search(["経費"], 5) == []
    assert len(store.lexical_search(["規程"], 5)) == 1


def test_lexical_search_is_bm25(store: Store) -> None:
    fill(store)
    # 経費 occurs twice in its chunk and in no other: it wins; 休暇 is in two chunks.
    ranking = store.lexical_search(["経費", "休暇"], 5)
    texts = [c.text for c in store.get_chunks([cid for cid, _ in ranking])]
    assert texts[0] == "経費の申請と精算" and set(texts[1:]) == {"休暇の申請", "休暇は年20日"}
    assert all(score > 0 for _, score in ranking)
    scoped = store.lexical_search(["休暇"], 5, collection="人事")
    assert [c.text for c in store.get_chunks([cid for cid, _ in scoped])] == ["休暇は年20日"]
    assert store.lexical_search(["存在しない"], 5) == [] and store.lexical_search([], 5) == []
    # Tokens with FTS/tsquery syntax characters are plain terms.
    assert store.lexical_search(['"', "'", "a OR b", "c++", "-", "*"], 5) == []


def test_dense_search_by_collection(store: Store) -> None:
    if not vectors_here(store):
        pytest.skip("the bundled pgvector needs an AVX-512 CPU")
    fill(store)
    ranking = store.dense_search(unit(1, 0, 0), 3)
    texts = [c.text for c in store.get_chunks([cid for cid, _ in ranking])]
    assert texts == ["休暇の申請", "休暇は年20日", "経費の申請と精算"]
    assert [round(s, 4) for _, s in ranking] == [1.0, 0.7071, 0.0]
    scoped = store.dense_search(unit(1, 0, 0), 3, collection="人事")
    assert [c.text for c in store.get_chunks([cid for cid, _ in scoped])] == ["休暇は年20日"]
    assert store.dense_search(unit(1, 0, 0), 3, collection="none-such") == []


def test_nfd_names_match_their_nfc_spelling(store: Store) -> None:
    nfd = unicodedata.normalize("NFD", "/d/がくしゅう/ガイド.txt")
    store.replace_document(nfd, "x", 0.0, 1, [chunk("本文", ["本文"], None)])
    nfc = unicodedata.normalize("NFC", nfd)
    assert nfc != nfd
    found = store.find_document(nfc)
    assert found is not None and found.path == nfd
    assert [d.path for d in store.documents_under(Path(unicodedata.normalize("NFC", "/d/がくしゅう")))] == [nfd]


@pytest.mark.parametrize("name, why", [
    ("a/b", "contains '/'"), ("..", "contains '..'"), ("x..y", "contains '..'"), ("", "is empty"),
    ("x" * 300, "is 300 characters long; at most 64"), ("tab\there", r"contains '\\t'"),
    (" 人事", "leading or trailing spaces"), ("a\\b", r"contains '\\\\'"),
])
def test_bad_collection_names_are_refused(store: Store, name: str, why: str) -> None:
    with pytest.raises(CollectionNameError, match=why):
        store.replace_document("/d/x.txt", "x", 0.0, 1, [], collection=name)
    assert store.list_documents() == []


def test_good_collection_names() -> None:
    assert [validate_collection(n) for n in ("人事", "handbook-2026", "社内 規程", "a.b")] == [
        "人事", "handbook-2026", "社内 規程", "a.b"]


def test_a_second_connection_sees_each_write(store_location: Path | str) -> None:
    # As two `lorag serve` processes sharing one store do: the revision tells the reader to look again.
    with Store(store_location) as writer, Store(store_location) as reader:
        v = vectors_here(writer)
        writer.replace_document("/d/1.txt", "1", 0.0, 1, [chunk("休暇", ["休暇"], unit(1, 0, 0) if v else None)])
        assert len(reader.lexical_search(["休暇"], 5)) == 1 and reader.revision() == 1
        if v:
            assert len(reader.dense_search(unit(1, 0, 0), 5)) == 1
        writer.replace_document("/d/2.txt", "2", 0.0, 1, [chunk("休暇", ["休暇"], unit(0, 1, 0) if v else None)])
        assert len(reader.lexical_search(["休暇"], 5)) == 2 and reader.revision() == 2
        if v:
            assert len(reader.dense_search(unit(1, 0, 0), 5)) == 2
        writer.delete_document(writer.find_document("/d/1.txt").id)  # type: ignore[union-attr]
        assert reader.collections() == [("default", 1, 1)]
