"""Collections over HTTP: /api/documents and /api/search scoped by collection; the CLI reusing a live server."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from lorag.config import load_config, update_config
from lorag.rag.store import NewChunk, Store
from lorag.rag.store.factory import store_fingerprint
from tests.server.conftest import LiveServer, make_project, start_server


@pytest.fixture
def scoped(tmp_path: Path) -> Iterator[LiveServer]:
    """A server over a store with one document in `default` and one in `人事` (no embedder: BM25 only)."""
    path = make_project(tmp_path / "p", **{"retrieval.embedder": "none"})
    with Store(load_config(path).store_path) as store:
        with store.transaction():
            store.set_meta("embedder", "none")
            store.set_meta("tokenizer", "sudachi")
        store.replace_document(str(tmp_path / "経費.txt"), "a", 0.0, 1,
                               [NewChunk("経費は翌月10日まで。", None, 0, 11, ["経費", "翌月", "10", "日"])])
        store.replace_document(str(tmp_path / "休暇.txt"), "b", 0.0, 1,
                               [NewChunk("有給休暇は年20日。", None, 0, 10, ["有給", "休暇", "年", "20", "日"])],
                               collection="人事")
    server = start_server(path)
    yield server
    server.stop()


def test_documents_by_collection(scoped: LiveServer) -> None:
    with scoped.client() as client:
        body = client.get("/api/documents", params={"collection": "人事"}).json()
        assert [d["collection"] for d in body["documents"]] == ["人事"]
        assert body["collections"] == [{"name": "default", "documents": 1, "chunks": 1},
                                       {"name": "人事", "documents": 1, "chunks": 1}]
        assert len(client.get("/api/documents").json()["documents"]) == 2
        bad = client.get("/api/documents", params={"collection": "../etc"})
        assert bad.status_code == 400 and "contains '/'" in bad.json()["error"]


def test_search_by_collection(scoped: LiveServer) -> None:
    with scoped.client(auth=False) as client:  # loopback reads need no token
        hits = client.get("/api/search", params={"q": "日", "collection": "人事"}).json()["hits"]
        assert [h["text"] for h in hits] == ["有給休暇は年20日。"]
        everything = client.get("/api/search", params={"q": "日"}).json()
        assert len(everything["hits"]) == 2
        assert everything["store"] == store_fingerprint(load_config(scoped.config_path).store_path)
        long = client.get("/api/search", params={"q": "日", "collection": "x" * 300})
        assert long.status_code == 422
        assert client.get("/api/search", params={"q": "日", "collection": "a..b"}).status_code == 400


def test_cli_search_goes_through_a_server_on_the_same_store(scoped: LiveServer, tmp_path: Path) -> None:
    from lorag.rag.served import served_search

    port = int(scoped.url.rsplit(":", 1)[1])
    config = update_config(scoped.config_path, {"server.port": port})
    hits = served_search(config, "休暇", top_k=1)
    assert hits is not None and [h.text for h in hits] == ["有給休暇は年20日。"]
    other = make_project(tmp_path / "other", **{"server.port": port})
    assert served_search(load_config(other), "休暇") is None  # another store: search locally instead
    closed = make_project(tmp_path / "closed", **{"server.port": 1})
    assert served_search(load_config(closed), "休暇") is None


def test_upload_into_a_collection(scoped: LiveServer, tmp_path: Path) -> None:
    from lorag.rag.ingest import ingest_paths

    if "collection" not in inspect.signature(ingest_paths).parameters:
        pytest.skip("ingest_paths(collection=...) arrives with the ingest branch")
    with scoped.client() as client:
        reply = client.post("/api/documents", data={"collection": "総務"},
                            files=[("files", ("備品.txt", "備品の購入は総務に申請します。".encode(), "text/plain"))])
        assert reply.status_code == 201, reply.text
        names = {c["name"] for c in client.get("/api/documents").json()["collections"]}
        assert names == {"default", "人事", "総務"}
        bad = client.post("/api/documents", data={"collection": "a/b"},
                          files=[("files", ("x.txt", b"x", "text/plain"))])
        assert bad.status_code == 400
