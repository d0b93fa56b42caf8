"""Schemathesis over the OpenAPI schema: no generated request makes the server answer 5xx.

Up to 20 examples per operation. Excluded because each call runs the LLM (seconds to tens of seconds on
2 cores): POST /api/query and POST /v1/chat/completions; their validation is covered in test_api/test_openai.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.server.conftest import LiveServer, make_project, start_server

SLOW_OPERATIONS = ("/api/query", "/v1/chat/completions")
MAX_EXAMPLES = 20


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("fuzz-models")
    (root / "lora").mkdir()
    project = make_project(tmp_path_factory.mktemp("fuzz") / "p", **{"models.roots": [str(root)]})
    server = start_server(project)
    yield server
    server.stop()


def fuzz_operation(operation: Any, server: LiveServer) -> list[str]:
    """Up to MAX_EXAMPLES generated requests to one operation; the 5xx replies (and bad error bodies) found."""
    failures: list[str] = []

    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=120)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}")
        elif response.status_code >= 400 and "error" not in _json(response):
            failures.append(f"{case.method} {case.formatted_path}: {response.status_code} without an 'error' body")

    run()
    return failures


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def test_no_operation_answers_5xx(fuzz_server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = [op for op in operations if op.path not in SLOW_OPERATIONS]
    assert len(fuzzed) >= 14
    failures = [failure for op in fuzzed for failure in fuzz_operation(op, fuzz_server)]
    assert failures == []


def test_the_schema_lists_every_area(fuzz_server: LiveServer) -> None:
    import httpx

    paths = set(httpx.get(f"{fuzz_server.url}/openapi.json").json()["paths"])
    assert {"/api/query", "/api/search", "/api/documents", "/api/models", "/api/quantize-model", "/api/jobs",
            "/api/jobs/{job_id}/events", "/api/config", "/v1/models", "/v1/chat/completions"} <= paths


def test_config_file_survives_fuzzing(fuzz_server: LiveServer) -> None:
    from lorag.config import load_config

    assert load_config(Path(fuzz_server.config_path)).settings.server.host == "127.0.0.1"
