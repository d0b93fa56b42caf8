"""Build jobs: 202 + id, SSE progress with replay, one at a time, shared duplicates, cancel, restart recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import LiveServer, make_project, sse_events, start_server
from tests.server.job_workers import scripted_job


@pytest.fixture
def adapter_dir(models_root: Path) -> Path:
    path = models_root / "lora-stand-in"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def jobs_server(tmp_path: Path, models_root: Path) -> Iterator[LiveServer]:
    server = start_server(make_project(tmp_path / "p", **{"models.roots": [str(models_root)]}), job_target=scripted_job)
    yield server
    server.stop()


def submit(server: LiveServer, adapter: Path, name: str, **extra: Any) -> dict[str, Any]:
    with server.client() as client:
        reply = client.post("/api/quantize-model", json={"lora_path": str(adapter), "name": name, **extra})
    assert reply.status_code == 202, reply.text
    assert reply.headers["location"] == f"/api/jobs/{reply.json()['job_id']}"
    body: dict[str, Any] = reply.json()
    return body


def wait_status(server: LiveServer, job_id: str, *wanted: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with server.client() as client:
        while time.monotonic() < deadline:
            job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
            if job["status"] in wanted:
                return job
            time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {wanted}")


def test_build_job_streams_progress_and_succeeds(jobs_server: LiveServer, adapter_dir: Path) -> None:
    jobs_server.state._generator = object()  # a loaded model the build must replace
    body = submit(jobs_server, adapter_dir, "quick-1", quantization="q8_0")
    assert body["shared"] is False and body["job"]["status"] == "queued"
    assert body["job"]["params"]["quantization"] == "Q8_0"
    with jobs_server.client() as client:
        events = sse_events(client.get(f"/api/jobs/{body['job_id']}/events"))
    statuses = [data["status"] for name, data in events if name == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    progress = [(d["stage"], d["percent"]) for name, d in events if name == "progress"]
    assert progress[0] == ("validate", 0) and progress[-1] == ("merge", 100)
    assert events[-1][1]["result"]["fidelity"] == {"kl_mean": 0.01, "top1": 0.97}
    job = wait_status(jobs_server, body["job_id"], "succeeded")
    assert job["result"]["size_bytes"] == 123 and job["error"] is None
    assert jobs_server.state._generator is None  # the next query loads the new model
    assert not (jobs_server.state.config.data_dir / "jobs" / body["job_id"]).exists()


def test_events_replay_from_last_event_id(jobs_server: LiveServer, adapter_dir: Path) -> None:
    job_id = submit(jobs_server, adapter_dir, "quick-2")["job_id"]
    wait_status(jobs_server, job_id, "succeeded")
    with jobs_server.client() as client:
        full = client.get(f"/api/jobs/{job_id}/events")
        resumed = client.get(f"/api/jobs/{job_id}/events", headers={"Last-Event-ID": "3"})
    all_events = sse_events(full)
    assert sse_events(resumed) == all_events[3:]
    assert "id: 4\n" in resumed.text


def test_failed_build_reports_the_reason(jobs_server: LiveServer, adapter_dir: Path) -> None:
    job_id = submit(jobs_server, adapter_dir, "fail-1")["job_id"]
    job = wait_status(jobs_server, job_id, "failed")
    assert job["error"] == "merge failed: the adapter does not match its base"
    assert not (jobs_server.state.config.output_dir / ".lorag-tmp-build").exists()
    with jobs_server.client() as client:
        assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 409


def test_one_build_at_a_time_duplicates_share_and_cancel_terminates(jobs_server: LiveServer, adapter_dir: Path) -> None:
    first = submit(jobs_server, adapter_dir, "slow-a")
    again = submit(jobs_server, adapter_dir, "slow-a")
    other = submit(jobs_server, adapter_dir, "slow-b")
    assert again["job_id"] == first["job_id"] and again["shared"] is True
    assert other["job_id"] != first["job_id"]
    running = wait_status(jobs_server, first["job_id"], "running")
    work_dir = jobs_server.state.config.data_dir / "jobs" / running["id"]
    deadline = time.monotonic() + 30
    while not (work_dir / "partial.bin").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with jobs_server.client() as client:
        assert client.get(f"/api/jobs/{other['job_id']}").json()["status"] == "queued"
        cancelled = client.post(f"/api/jobs/{first['job_id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"] == "cancelled by the user"
    assert not work_dir.exists()
    assert not (jobs_server.state.config.output_dir / ".lorag-tmp-build").exists()
    wait_status(jobs_server, other["job_id"], "running")
    with jobs_server.client() as client:
        assert client.post(f"/api/jobs/{other['job_id']}/cancel").json()["status"] == "cancelled"
        listed = [j["id"] for j in client.get("/api/jobs").json()["jobs"]]
    assert listed == [other["job_id"], first["job_id"]]


def test_cancel_a_queued_job(jobs_server: LiveServer, adapter_dir: Path) -> None:
    first = submit(jobs_server, adapter_dir, "slow-c")
    queued = submit(jobs_server, adapter_dir, "quick-3")
    with jobs_server.client() as client:
        reply = client.post(f"/api/jobs/{queued['job_id']}/cancel").json()
        assert reply["status"] == "cancelled" and reply["started_at"] is None
        client.post(f"/api/jobs/{first['job_id']}/cancel")


def test_restart_marks_running_job_failed_and_cleans_up(tmp_path: Path) -> None:
    from lorag.config import load_config
    from lorag.server.jobs import RESTART_REASON
    from lorag.server.jobstore import Job, JobStore

    config_path = make_project(tmp_path / "p")
    config = load_config(config_path)
    store = JobStore(config.data_dir / "jobs.db")
    work_dir = config.data_dir / "jobs" / "j1"
    work_dir.mkdir(parents=True)
    (work_dir / "merged.safetensors").write_bytes(b"partial")
    stale = config.output_dir / ".lorag-tmp-model-123"
    stale.mkdir(parents=True)
    store.insert(Job(id="j1", kind="build", key="k", status="running", params={"lora_path": "/x"}, result=None,
                     error=None, work_dir=str(work_dir), pid=None, pid_started=None, created_at=time.time(),
                     started_at=time.time(), finished_at=None))
    server = start_server(config_path, job_target=scripted_job)
    try:
        with server.client() as client:
            job = client.get("/api/jobs/j1").json()
            events = sse_events(client.get("/api/jobs/j1/events"))
        assert job["status"] == "failed" and job["error"] == RESTART_REASON
        assert events[-1] == ("status", {**events[-1][1], "status": "failed", "error": RESTART_REASON})
        assert not work_dir.exists() and not stale.exists()
    finally:
        server.stop()


def test_bad_build_requests_are_422(jobs_server: LiveServer, adapter_dir: Path) -> None:
    with jobs_server.client() as client:
        for body in ({"lora_path": str(adapter_dir), "quantization": "Q3_XXL"},
                     {"lora_path": str(adapter_dir), "mode": "fuse"},
                     {"lora_path": str(adapter_dir), "name": "../../evil"},
                     {}):
            reply = client.post("/api/quantize-model", json=body)
            assert reply.status_code == 422, body
            assert reply.json()["fields"]
