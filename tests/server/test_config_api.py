"""GET/PATCH /api/config: validated, comment-keeping changes that apply without a restart."""

from __future__ import annotations

from pathlib import Path

from tests.server.conftest import LiveServer


def test_get_config_masks_secrets(bare: LiveServer) -> None:
    from lorag.config import update_config

    update_config(bare.config_path, {"llm.openai_api_key": "sk-secret"})
    bare.state.reload_config()
    with bare.client(auth=False) as client:
        body = client.get("/api/config").json()
    assert body["path"] == str(bare.config_path)
    assert body["settings"]["llm"]["openai_api_key"] == "***"
    assert "sk-secret" not in str(body)


def test_patch_dotted_and_nested_keys_keeps_comments(bare: LiveServer) -> None:
    with bare.client() as client:
        reply = client.patch("/api/config", json={"retrieval.top_k": 7, "llm": {"temperature": 0.5}})
        assert reply.status_code == 200, reply.text
        assert reply.json()["settings"]["retrieval"]["top_k"] == 7
        assert client.get("/api/config").json()["settings"]["llm"]["temperature"] == 0.5
    text = bare.config_path.read_text()
    assert "top_k: 7" in text
    assert "# lorag configuration." in text and "# one SQLite file" in text
    assert Path(str(bare.config_path) + ".bak").exists()
    assert bare.state.config.settings.retrieval.top_k == 7


def test_invalid_change_is_422_with_field_errors_and_file_unchanged(bare: LiveServer) -> None:
    before = bare.config_path.read_text()
    with bare.client() as client:
        reply = client.patch("/api/config", json={"retrieval.top_k": 0, "llm.backend": "nope"})
    assert reply.status_code == 422
    fields = {f["field"] for f in reply.json()["fields"]}
    assert fields == {"retrieval.top_k", "llm.backend"}
    assert bare.config_path.read_text() == before


def test_unknown_key_is_422(bare: LiveServer) -> None:
    with bare.client() as client:
        reply = client.patch("/api/config", json={"llm.modle": "x"})
    assert reply.status_code == 422
    assert reply.json()["error"] == "unknown config keys: llm.modle."


def test_security_relevant_keys_are_locked(bare: LiveServer, tmp_path: Path) -> None:
    with bare.client() as client:
        for change in ({"server.port": 9}, {"models.roots": ["/"]}, {"server": {"token_file": "/tmp/t"}}):
            reply = client.patch("/api/config", json=change)
            assert reply.status_code == 403, change
        outside = client.patch("/api/config", json={"llm.model": str(tmp_path / "x.gguf")})
    assert outside.status_code == 403
    assert "outside models.roots" in outside.json()["error"]


def test_model_change_drops_the_loaded_generator(bare: LiveServer) -> None:
    bare.state._generator = object()  # stands for a loaded model
    with bare.client() as client:
        assert client.patch("/api/config", json={"retrieval.top_k": 3}).status_code == 200
        assert bare.state._generator is not None  # not a model setting: the model stays loaded
        assert client.patch("/api/config", json={"llm.max_tokens": 20}).status_code == 200
    assert bare.state._generator is None


def test_empty_patch_is_422(bare: LiveServer) -> None:
    with bare.client() as client:
        assert client.patch("/api/config", json={}).status_code == 422
        assert client.patch("/api/config", json=[1, 2]).status_code == 422
