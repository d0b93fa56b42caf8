"""The build's stage names are defined once and served to the page with the job list."""

from __future__ import annotations

from pathlib import Path

from lorag.build.request import STAGES
from tests.server.conftest import make_project, start_server
from tests.server.job_workers import scripted_job


def test_stages_come_from_the_server(tmp_path: Path) -> None:
    assert STAGES == ("validate", "merge", "convert", "quantize", "verify", "modelfile", "register", "config")
    server = start_server(make_project(tmp_path / "p"), job_target=scripted_job)
    try:
        with server.client() as client:
            body = client.get("/api/build/stages").json()
    finally:
        server.stop()
    assert body == {"stages": list(STAGES)}
    app_js = (Path(__file__).parents[2] / "lorag" / "server" / "static" / "app.js").read_text(encoding="utf-8")
    assert '"validate", "merge"' not in app_js  # the page keeps no copy of the list


def test_a_build_enters_each_stage_once_in_order(qwen2_q4) -> None:  # type: ignore[no-untyped-def]
    from itertools import groupby

    entered = [stage for stage, _ in groupby(e["stage"] for e in qwen2_q4.events)]
    # register is reported as skipped (no Ollama here), so the page can show it as such.
    assert entered == ["validate", "merge", "convert", "quantize", "verify", "modelfile", "register"]
    assert [e.get("skipped") for e in qwen2_q4.events if e["stage"] == "register"] == [True]
    assert [s for s in STAGES if s in entered] == entered
