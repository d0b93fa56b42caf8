"""A server build job that fails while a CLI build runs into the same folder must not delete the CLI build's files."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lorag.build.pipeline import run_build
from lorag.build.request import BuildRequest, BuildResult
from lorag.config import load_config
from lorag.server.jobs import JobManager
from lorag.server.jobstore import JobStore
from tests.server.job_workers import scripted_job


@pytest.mark.slow
def test_failing_server_job_leaves_a_running_cli_build_alone(build_config: Path, tiny_qwen2: Path,
                                                              tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    config = load_config(build_config)
    in_build, resume = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def hold_at_merge(event: dict[str, Any]) -> None:
        if event["stage"] == "merge" and not in_build.is_set():
            in_build.set()  # the build's temporary folder exists now
            assert resume.wait(120)

    def cli_build() -> None:
        request = BuildRequest(lora_path=tiny_qwen2_adapter, base=tiny_qwen2, quantization="Q8_0", name="race")
        try:
            outcome["result"] = run_build(config, request, progress=hold_at_merge)
        except Exception as exc:  # reported below, in the test's thread
            outcome["error"] = exc

    builder = threading.Thread(target=cli_build)
    builder.start()
    jobs = JobManager(JobStore(tmp_path / "jobs.db"), tmp_path / "work", target=scripted_job,
                      clean_dirs=lambda: [config.output_dir])
    try:
        assert in_build.wait(300)
        temps = sorted(p.name for p in config.output_dir.glob(".lorag-tmp-race-*"))
        assert len(temps) == 1
        jobs.start()
        job, _ = jobs.submit("build", {"config_path": str(build_config), "name": "fail-now"}, ("name",))
        deadline = time.monotonic() + 120
        while jobs.get(job.id).status not in ("failed", "succeeded") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert jobs.get(job.id).status == "failed"
        assert not (config.output_dir / ".lorag-tmp-build").exists()  # the failed job's own leftovers: removed
        assert sorted(p.name for p in config.output_dir.glob(".lorag-tmp-race-*")) == temps  # the CLI build's: kept
    finally:
        resume.set()
        builder.join(600)
        jobs.stop()
    assert "error" not in outcome, outcome.get("error")
    result: BuildResult = outcome["result"]
    assert result.gguf.is_file() and result.quantization == "Q8_0"
    assert list(config.output_dir.glob(".lorag-tmp-race-*")) == []
