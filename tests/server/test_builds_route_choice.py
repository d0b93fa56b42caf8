"""POST /api/quantize-model with mode auto and eval_prompts: both candidates scored, the rule's pick in the result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import LiveServer, models_server, sse_events

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def eval_file(tiny_qwen2_adapter: Path) -> Path:
    path = tiny_qwen2_adapter.parent / "my-prompts.jsonl"  # inside models.roots, not beside-named: only by request
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ("Hello, my name is", "1, 2, 3,")),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def auto_server(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2: Path,
                tiny_qwen2_adapter: Path) -> Iterator[LiveServer]:
    yield from models_server(tmp_path_factory, "auto-project", tiny_qwen2_adapter.parent, tiny_qwen2.parent)


def test_auto_build_reports_both_candidates(auto_server: LiveServer, tiny_qwen2_adapter: Path,
                                            eval_file: Path) -> None:
    body = {"lora_path": str(tiny_qwen2_adapter), "quantization": "Q8_0", "name": "tiny-auto", "mode": "auto",
            "eval_prompts": str(eval_file), "update_config": False}
    with auto_server.client() as client:
        job_id = client.post("/api/quantize-model", json=body).json()["job_id"]
        sse_events(client.get(f"/api/jobs/{job_id}/events"))
        job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    result = job["result"]
    choice = result["route_choice"]
    assert [c["name"] for c in choice["candidates"]] == ["merge", "adapter"]
    assert [c["chosen"] for c in choice["candidates"]].count(True) == 1
    chosen = next(c for c in choice["candidates"] if c["chosen"])
    assert result["mode"] == chosen["name"] == choice["chosen"] and result["gguf"] == chosen["gguf"]
    assert all(c["reason"] and c["prompts"] == 2 for c in choice["candidates"])
    assert result["behaviour"]["source"] == str(eval_file) and result["behaviour"]["generic"] is False
    assert result["behaviour"]["agreement"] == chosen["agreement"]
    assert result["behaviour"]["reference"].startswith("llama.cpp F16 GGUF + F16 GGUF LoRA")


def test_eval_prompts_outside_the_roots_are_refused(auto_server: LiveServer, tiny_qwen2_adapter: Path,
                                                    tmp_path: Path) -> None:
    outside = tmp_path / "eval.jsonl"
    outside.write_text('{"prompt": "x"}\n', encoding="utf-8")
    body = {"lora_path": str(tiny_qwen2_adapter), "mode": "auto", "eval_prompts": str(outside)}
    with auto_server.client() as client:
        response = client.post("/api/quantize-model", json=body)
    assert response.status_code == 403, response.text
    assert "outside models.roots" in response.text
