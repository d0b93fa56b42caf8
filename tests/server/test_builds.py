"""A real build through the API: tiny Qwen2 LoRA → GGUF in a worker process, then the config switches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import LiveServer, make_project, models_server, sse_events, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def build_server(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2: Path,
                 tiny_qwen2_adapter: Path) -> Iterator[LiveServer]:
    yield from models_server(tmp_path_factory, "build-project", tiny_qwen2_adapter.parent, tiny_qwen2.parent)


def test_build_runs_in_a_worker_and_switches_the_model(build_server: LiveServer, tiny_qwen2_adapter: Path) -> None:
    build_server.state._generator = object()  # stands for the model loaded before the build
    body = {"lora_path": str(tiny_qwen2_adapter), "quantization": "Q8_0", "name": "tiny-web"}
    with build_server.client() as client:
        first = client.post("/api/quantize-model", json=body)
        second = client.post("/api/quantize-model", json=body)
        assert first.status_code == 202 and second.status_code == 202
        assert second.json()["job_id"] == first.json()["job_id"] and second.json()["shared"] is True
        assert client.get("/api/health").status_code == 200  # the server answers while the build runs
        job_id = first.json()["job_id"]
        events = sse_events(client.get(f"/api/jobs/{job_id}/events"))
        job = client.get(f"/api/jobs/{job_id}").json()
        settings = client.get("/api/config").json()["settings"]
        models = client.get("/api/models").json()
    assert job["status"] == "succeeded", job["error"]
    assert [d["status"] for n, d in events if n == "status"] == ["queued", "running", "succeeded"]
    stages = [d["stage"] for n, d in events if n == "progress"]
    assert stages[0] == "validate" and "quantize" in stages and stages[-1] == "config"
    result = job["result"]
    assert result["quantization"] == "Q8_0" and result["size_bytes"] > 0 and result["config_updated"] is True
    assert set(result["fidelity"]) >= {"kl_mean", "top1"}
    gguf = Path(result["gguf"])
    assert gguf.is_file()
    assert build_server.state.config.resolve(settings["llm"]["model"]).resolve() == gguf.resolve()
    assert build_server.state._generator is None  # dropped: the next query loads the new GGUF
    assert [a["gguf"] for a in models["artifacts"]] == [str(gguf)]


def test_inspect_and_plan_an_adapter_inside_the_roots(build_server: LiveServer, tiny_qwen2_adapter: Path) -> None:
    with build_server.client(auth=False) as client:
        info = client.get("/api/models/inspect", params={"path": str(tiny_qwen2_adapter)})
        plan = client.get("/api/models/plan", params={"path": str(tiny_qwen2_adapter)})
    assert info.status_code == 200, info.text
    assert info.json()["kind"] == "adapter" and info.json()["adapter"]["rank"] == 8
    assert plan.status_code == 200, plan.text
    assert plan.json()["chosen"] is not None and plan.json()["reason"]


def test_a_base_outside_the_roots_fails_the_build_before_any_work(tmp_path: Path, tiny_qwen2_adapter: Path) -> None:
    # The adapter lies inside models.roots but names a base outside them: the build must not read that base.
    project = make_project(tmp_path / "p", **{"models.roots": [str(tiny_qwen2_adapter.parent)]})
    before = project.read_text(encoding="utf-8")
    server = start_server(project)
    try:
        with server.client() as client:
            reply = client.post("/api/quantize-model", json={"lora_path": str(tiny_qwen2_adapter), "name": "outside"})
            assert reply.status_code == 202
            job_id = reply.json()["job_id"]
            sse_events(client.get(f"/api/jobs/{job_id}/events"))
            job = client.get(f"/api/jobs/{job_id}").json()
    finally:
        server.stop()
    assert job["status"] == "failed"
    assert "outside models.roots" in job["error"] and "base" in job["error"]
    assert project.read_text(encoding="utf-8") == before
