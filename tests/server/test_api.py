"""The HTTP API against a real uvicorn server, a real store and the bundled Gemma 3 270M via llama.cpp."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.conftest import TEST_DOCS, LiveServer, sse_events

QUESTION = "経費はいつまでに申請すればよいですか？"


def test_page_and_static_files_are_served(live: LiveServer) -> None:
    with live.client(auth=False) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "<title>lorag</title>" in page.text
        assert client.get("/static/app.js").status_code == 200
        health = client.get("/api/health").json()
        assert health["status"] == "ok"
        assert set(health["model_queue"]) == {"waiting", "waiting_questions", "waiting_tasks", "running", "served",
                                              "preempted", "busy_s"}
        icon = client.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def test_documents_are_listed_with_names(live: LiveServer) -> None:
    with live.client(auth=False) as client:
        docs = client.get("/api/documents").json()["documents"]
    assert sorted(d["name"] for d in docs if not d["uploaded"]) == sorted(TEST_DOCS)
    assert all(d["n_chunks"] > 0 for d in docs)


def test_search_returns_ranked_hits(live: LiveServer) -> None:
    with live.client(auth=False) as client:
        reply = client.get("/api/search", params={"q": "経費の申請期限", "top_k": 2})
    assert reply.status_code == 200
    hits = reply.json()["hits"]
    assert [h["rank"] for h in hits] == [1, 2]
    assert hits[0]["name"] == "経費精算規程.pdf"
    assert "翌月10日" in hits[0]["text"]


@pytest.mark.slow
def test_query_streams_sources_tokens_then_done(live: LiveServer) -> None:
    with live.client(auth=False) as client:
        reply = client.post("/api/query", json={"question": QUESTION, "top_k": 2})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = sse_events(reply)
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "done"
    assert "token" in names and set(names[1:-1]) == {"token"}
    sources = events[0][1]["hits"]
    assert sources[0]["name"] == "経費精算規程.pdf"
    assert events[0][1]["query"] == QUESTION
    done = events[-1][1]
    assert done["answer"] == "".join(data["text"] for name, data in events if name == "token").strip()
    assert sorted(c["n"] for c in done["citations"]) == list(range(1, len(sources) + 1))
    assert any(c["name"] == "経費精算規程.pdf" for c in done["citations"])
    assert done["sources"] == sources and done["finish_reason"] in ("stop", "length")


@pytest.mark.slow
def test_query_with_history_searches_the_follow_up_with_the_conversation(live: LiveServer) -> None:
    history = [{"role": "user", "content": "有給休暇は何日もらえますか？"},
               {"role": "assistant", "content": "入社6か月後に10日です。[1]"}]
    with live.client(auth=False) as client:
        reply = client.post("/api/query", json={"question": "それは入社何か月後からですか？", "history": history,
                                                "stream": False, "top_k": 1})
    assert reply.status_code == 200, reply.text
    assert reply.json()["sources"][0]["name"] == "休暇制度.docx"


def test_query_for_an_unknown_collection_is_404_with_a_code(live: LiveServer) -> None:
    with live.client(auth=False) as client:
        reply = client.post("/api/query", json={"question": QUESTION, "collection": "nope"})
    assert reply.status_code == 404
    assert reply.json() == {"error": "no collection named 'nope'.", "code": "collection_not_found",
                            "params": {"name": "nope"}}


def test_each_request_gets_one_access_log_line_without_query_or_token(live: LiveServer,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="lorag.access"), live.client() as client:
        client.get("/api/search", params={"q": "秘密の検索語", "top_k": 1})
        client.get("/api/jobs/nope")
    lines = [r.getMessage() for r in caplog.records if r.name == "lorag.access"]
    assert len(lines) == 2
    assert lines[0].startswith('127.0.0.1 "GET /api/search" 200 ') and lines[0].endswith(" ms")
    assert lines[1].startswith('127.0.0.1 "GET /api/jobs/nope" 404 ')
    assert not any("秘密" in line or live.token in line or "q=" in line for line in lines)


@pytest.mark.slow
def test_query_without_stream_returns_json(live: LiveServer) -> None:
    with live.client(auth=False) as client:
        reply = client.post("/api/query", json={"question": QUESTION, "top_k": 1, "stream": False})
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"answer", "citations", "sources", "finish_reason"}
    assert body["answer"]
    assert body["citations"][0]["source"].endswith("経費精算規程.pdf")
    assert "翌月10日" in body["sources"][0]["text"]


def test_query_validation_errors_are_422_json(live: LiveServer) -> None:
    with live.client(auth=False) as client:
        reply = client.post("/api/query", json={"question": "", "top_k": 0})
    assert reply.status_code == 422
    fields = {f["field"] for f in reply.json()["fields"]}
    assert fields == {"question", "top_k"}


@pytest.mark.slow
def test_upload_list_search_reingest_delete(live: LiveServer) -> None:
    text = "社内報\n社員食堂のカレーライスは毎週金曜日に提供されます。価格は450円です。\n".encode()
    with live.client() as client:
        reply = client.post("/api/documents", files=[("files", ("食堂の案内.txt", text, "text/plain"))])
        assert reply.status_code == 201, reply.text
        assert len(reply.json()["report"]["added"]) == 1
        doc = next(d for d in client.get("/api/documents").json()["documents"] if d["uploaded"])
        assert doc["name"] == "食堂の案内.txt"
        stored = Path(doc["path"])
        assert stored.parent == live.state.config.data_dir / "uploads"
        assert stored.name != "食堂の案内.txt" and stored.suffix == ".txt"  # a server-chosen name
        hits = client.get("/api/search", params={"q": "カレーライス", "top_k": 1}).json()["hits"]
        assert hits[0]["name"] == "食堂の案内.txt"
        again = client.post(f"/api/documents/{doc['id']}/reingest")
        assert again.status_code == 200
        assert again.json()["report"]["added"] == [str(stored)]
        new_id = again.json()["document"]["id"]
        assert client.delete(f"/api/documents/{new_id}").status_code == 200
        assert not stored.exists()
        names = [d["name"] for d in client.get("/api/documents").json()["documents"]]
        assert "食堂の案内.txt" not in names
        assert client.delete(f"/api/documents/{new_id}").status_code == 404


def test_upload_of_unsupported_type_is_refused(live: LiveServer) -> None:
    with live.client() as client:
        exe = ("tool.exe", b"MZ\x90\x00", "application/octet-stream")
        reply = client.post("/api/documents", files=[("files", exe)])
    assert reply.status_code == 400
    body = reply.json()
    assert "not supported" in body["error"] and body["code"] == "upload_type_unsupported"
    assert body["params"]["name"] == "tool.exe" and body["params"]["ext"] == ".exe"
    assert list((live.state.config.data_dir / "uploads").glob("*.exe")) == []


def test_models_lists_current_and_reports_ollama_unreachable(live: LiveServer) -> None:
    with live.client(auth=False) as client:
        body = client.get("/api/models").json()
    assert body["current"]["bundled"] is True
    assert body["artifacts"] == []
    assert body["ollama"]["reachable"] is False and "error" in body["ollama"]


def test_plan_for_the_configured_model(live: LiveServer) -> None:
    with live.client(auth=False) as client:
        reply = client.get("/api/models/plan")
        again = client.get("/api/models/plan")
    assert reply.status_code == 200, reply.text
    plan = reply.json()
    assert plan["model"]["kind"] == "gguf"
    assert plan["chosen"] is not None and plan["reason"]
    assert again.json() == plan and len(live.state.plan_cache) == 1  # the second answer came from the cache


def test_unknown_job_is_404(live: LiveServer) -> None:
    with live.client() as client:
        assert client.get("/api/jobs/nope").json() == {"error": "no job with id 'nope'.", "code": "not_found",
                                                       "params": {}}
        assert client.get("/api/jobs/nope").status_code == 404
        assert client.post("/api/jobs/nope/cancel").status_code == 404
        listing = client.get("/api/jobs").json()
        stages = client.get("/api/build/stages").json()["stages"]
    assert "nope" not in [job["id"] for job in listing["jobs"]]
    assert stages[0] == "validate" and "register" in stages
