"""Security: bearer token on every mutating endpoint, paths confined to models.roots, upload limits, no CORS."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import LiveServer, make_project, start_server

MUTATING = [
    ("POST", "/api/documents"),
    ("DELETE", "/api/documents/1"),
    ("POST", "/api/documents/1/reingest"),
    ("PATCH", "/api/config"),
    ("POST", "/api/quantize-model"),
    ("POST", "/api/jobs/abc/cancel"),
]


@pytest.mark.parametrize(("method", "path"), MUTATING)
def test_mutating_endpoints_need_the_token(bare: LiveServer, method: str, path: str) -> None:
    with bare.client(auth=False) as client:
        missing = client.request(method, path, json={})
        wrong = client.request(method, path, json={}, headers={"Authorization": "Bearer not-the-token"})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"].startswith("missing bearer token")
    assert wrong.status_code == 401
    assert wrong.json()["error"].startswith("wrong bearer token")


def test_token_file_is_private_and_stable(bare: LiveServer) -> None:
    from lorag.config import load_config
    from lorag.server.auth import ensure_token, token_path

    config = load_config(bare.config_path)
    path = token_path(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == bare.token
    assert ensure_token(config) == bare.token
    assert len(bare.token) >= 40


def test_reads_from_other_hosts_need_the_token(bare: LiveServer) -> None:
    transport = httpx.ASGITransport(app=bare.app, client=("10.1.2.3", 50000))

    async def calls() -> tuple[int, int, int]:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            anonymous = await client.get("/api/config")
            with_token = await client.get("/api/config", headers={"Authorization": f"Bearer {bare.token}"})
            page = await client.get("/")
            return anonymous.status_code, with_token.status_code, page.status_code

    import asyncio

    assert asyncio.run(calls()) == (401, 200, 200)


def test_foreign_host_header_is_refused(bare: LiveServer) -> None:
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host header.
    with bare.client(auth=False) as client:
        assert client.get("/api/config", headers={"Host": "evil.example"}).status_code == 400


def test_page_forbids_foreign_scripts_and_framing(bare: LiveServer) -> None:
    with bare.client(auth=False) as client:
        headers = client.get("/").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_cors_is_off_by_default(bare: LiveServer) -> None:
    with bare.client(auth=False) as client:
        reply = client.get("/api/config", headers={"Origin": "http://evil.example"})
        preflight = client.options("/api/config", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "PATCH"})
    assert "access-control-allow-origin" not in reply.headers
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_origins_setting_enables_cors(tmp_path: Path) -> None:
    server = start_server(make_project(tmp_path, **{"server.cors_origins": ["http://ui.example"]}))
    try:
        with server.client(auth=False) as client:
            reply = client.get("/api/config", headers={"Origin": "http://ui.example"})
        assert reply.headers["access-control-allow-origin"] == "http://ui.example"
    finally:
        server.stop()


def test_lora_path_outside_roots_is_403(bare: LiveServer, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "lora"
    outside.mkdir(parents=True)
    with bare.client() as client:
        reply = client.post("/api/quantize-model", json={"lora_path": str(outside)})
    assert reply.status_code == 403
    assert "outside models.roots" in reply.json()["error"]


def test_dotdot_traversal_is_refused(bare: LiveServer, models_root: Path) -> None:
    sneaky = f"{models_root}/../../etc"
    with bare.client() as client:
        build = client.post("/api/quantize-model", json={"lora_path": sneaky})
        inspect = client.get("/api/models/inspect", params={"path": sneaky})
    for reply in (build, inspect):
        assert reply.status_code == 403
        assert "contains '..'" in reply.json()["error"]


def test_symlink_out_of_the_roots_is_refused(bare: LiveServer, models_root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    link = models_root / "innocent-link"
    if not link.exists():
        os.symlink(secret, link)
    with bare.client() as client:
        reply = client.get("/api/models/inspect", params={"path": str(link)})
    assert reply.status_code == 403
    assert str(secret) in reply.json()["error"]


def test_no_endpoint_reads_arbitrary_files(bare: LiveServer) -> None:
    with bare.client() as client:
        for params in ({"path": "/etc/passwd"}, {"path": "/etc"}):
            assert client.get("/api/models/inspect", params=params).status_code == 403
            assert client.get("/api/models/plan", params=params).status_code == 403
        assert client.get("/static/../lorag.yaml").status_code == 404
        assert client.get("/static/%2e%2e/app.py").status_code == 404


def test_missing_path_inside_roots_is_404(bare: LiveServer, models_root: Path) -> None:
    with bare.client() as client:
        reply = client.post("/api/quantize-model", json={"lora_path": str(models_root / "no-such-adapter")})
    assert reply.status_code == 404


def test_oversized_upload_is_413(tmp_path: Path) -> None:
    server = start_server(make_project(tmp_path, **{"server.max_upload_mb": 0.05}))  # 50 KiB
    big = b"a" * (300 * 1024)
    try:
        with server.client() as client:
            declared = client.post("/api/documents", files=[("files", ("big.txt", big, "text/plain"))])

            body = (b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n'
                    b"Content-Type: text/plain\r\n\r\n" + big + b"\r\n--xyz--\r\n")

            def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it arrives
                for i in range(0, len(body), 16384):
                    yield body[i : i + 16384]

            streamed = client.post("/api/documents", content=chunks(),
                                   headers={"Content-Type": "multipart/form-data; boundary=xyz"})
            assert "content-length" not in streamed.request.headers
        for reply in (declared, streamed):
            assert reply.status_code == 413
            assert "upload too large" in reply.json()["error"]
        assert list((server.state.config.data_dir / "uploads").glob("*")) == []
    finally:
        server.stop()


def test_upload_just_over_the_file_limit_is_413(tmp_path: Path) -> None:
    # Within the multipart allowance of the body check, but the file itself is over the limit.
    server = start_server(make_project(tmp_path, **{"server.max_upload_mb": 0.05}))
    try:
        with server.client() as client:
            reply = client.post("/api/documents", files=[("files", ("a.txt", b"b" * (52 * 1024), "text/plain"))])
        assert reply.status_code == 413
        assert list((server.state.config.data_dir / "uploads").glob("*.txt")) == []
    finally:
        server.stop()


def _oversized_json(size: int) -> Iterator[bytes]:
    """A JSON body of ``size`` bytes sent without Content-Length (counted as it arrives)."""
    head = b'{"model": "lorag-rag", "messages": [{"role": "user", "content": "'
    yield head
    left = size - len(head)
    while left > 0:
        piece = min(left, 1 << 20)
        yield b"a" * piece
        left -= piece


@pytest.mark.parametrize("declared", [True, False])
def test_oversized_json_bodies_are_413_in_each_apis_shape(bare: LiveServer, declared: bool) -> None:
    from lorag.server.limits import MAX_JSON_BODY_BYTES

    size = MAX_JSON_BODY_BYTES + 1024
    with bare.client() as client:
        replies = {}
        for path in ("/v1/chat/completions", "/api/query"):
            if declared:
                body = b"".join(_oversized_json(size))
                replies[path] = client.post(path, content=body, headers={"Content-Type": "application/json"})
            else:
                replies[path] = client.post(path, content=_oversized_json(size),
                                            headers={"Content-Type": "application/json"})
                assert "content-length" not in replies[path].request.headers
        health = client.get("/api/health")
    openai_error = replies["/v1/chat/completions"].json()["error"]
    assert replies["/v1/chat/completions"].status_code == 413
    assert openai_error["type"] == "invalid_request_error"
    assert openai_error["code"] == "request_too_large"
    assert openai_error["message"].startswith("request body too large: the limit is 16 MB.")
    lorag_error = replies["/api/query"].json()
    assert replies["/api/query"].status_code == 413
    assert lorag_error["code"] == "body_too_large"
    assert lorag_error["params"] == {"limit_mb": 16}
    assert health.status_code == 200  # the server goes on serving


def test_oversized_upload_reply_has_a_code_for_the_page(tmp_path: Path) -> None:
    server = start_server(make_project(tmp_path, **{"server.max_upload_mb": 0.05}))
    try:
        with server.client() as client:
            reply = client.post("/api/documents", files=[("files", ("big.txt", b"a" * (300 * 1024), "text/plain"))])
        assert reply.status_code == 413
        assert reply.json()["code"] == "payload_too_large"
        assert reply.json()["params"] == {"limit_mb": 0.05}
    finally:
        server.stop()
