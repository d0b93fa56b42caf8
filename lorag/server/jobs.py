"""Build jobs: queued in SQLite, run one at a time in a spawned worker process, cancellable, restart-safe.

The server stays responsive because the build never runs in its process: a runner thread starts one worker
process (multiprocessing "spawn") per job and turns the worker's messages into stored events. Two requests
for the same inputs share one job while it is queued or running.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lorag.build.cache import clean_stale_builds
from lorag.server.errors import ConflictError, NotFoundError
from lorag.server.jobstore import ACTIVE, Job, JobStore
from lorag.server.worker import WorkerTarget, run_build_job, watch_worker

log = logging.getLogger(__name__)

RESTART_REASON = (
    "the server stopped while this job was running; its temporary files were removed. Start the build again."
)


def job_key(kind: str, params: dict[str, Any], identity: tuple[str, ...]) -> str:
    """A hash of the inputs that make two jobs the same build."""
    same = {name: params.get(name) for name in identity}
    return hashlib.sha256(json.dumps([kind, same], sort_keys=True).encode()).hexdigest()[:32]


class JobManager:
    """Queue, run, follow and cancel jobs; one job runs at a time."""

    def __init__(
        self,
        store: JobStore,
        work_root: Path,
        target: WorkerTarget = run_build_job,
        on_success: Callable[[Job], None] | None = None,
        clean_dirs: Callable[[], list[Path]] = list,
    ) -> None:
        self.store = store
        self.work_root = work_root
        self.target = target
        self.on_success = on_success
        self.clean_dirs = clean_dirs
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._cancel_ids: set[str] = set()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Fail jobs a previous server left running, then start the runner thread."""
        self.recover()
        self._thread = threading.Thread(target=self._run_forever, name="lorag-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the runner; a running job's worker is terminated and the job marked failed."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def recover(self) -> int:
        """Mark jobs left 'running' by a stopped server as failed and remove their temporary files."""
        stale = self.store.with_status("running")
        for job in stale:
            _stop_orphan(job)
            self._clean(job)
            self.store.finish(job.id, "failed", error=RESTART_REASON)
        return len(stale)

    # -- requests ----------------------------------------------------------------------------------------
    def submit(self, kind: str, params: dict[str, Any], identity: tuple[str, ...]) -> tuple[Job, bool]:
        """Queue a job, or return the queued/running one with the same inputs; the flag says if it is new."""
        key = job_key(kind, params, identity)
        with self._lock:
            existing = self.store.active_with_key(key)
            if existing is not None:
                return existing, False
            job_id = uuid.uuid4().hex[:16]
            job = Job(
                id=job_id, kind=kind, key=key, status="queued", params=params, result=None, error=None,
                work_dir=str(self.work_root / job_id), pid=None, pid_started=None,
                created_at=time.time(), started_at=None, finished_at=None,
            )
            self.store.insert(job)
            self.store.add_event(job_id, {"type": "status", "status": "queued"})
        self._wake.set()
        return job, True

    def get(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job is None:
            raise NotFoundError(f"no job with id {job_id!r}.")
        return job

    def cancel(self, job_id: str, wait: float = 15.0) -> Job:
        """Cancel a queued job at once, or terminate a running job's worker (waiting up to ``wait`` seconds)."""
        with self._lock:
            job = self.get(job_id)
            if job.status not in ACTIVE:
                raise ConflictError(f"job {job_id} already {job.status}; nothing to cancel.")
            if job.status == "queued":
                self.store.finish(job_id, "cancelled", error="cancelled before it started")
                return self.get(job_id)
            self._cancel_ids.add(job_id)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and self.get(job_id).status in ACTIVE:
            time.sleep(0.05)
        return self.get(job_id)

    # -- runner ------------------------------------------------------------------------------------------
    def _run_forever(self) -> None:
        while not self._stopping.is_set():
            queued = self.store.with_status("queued")
            if not queued:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self._run(queued[0])
            except Exception:  # keep the runner alive whatever one job does
                log.exception("job %s failed unexpectedly", queued[0].id)
                self.store.finish(queued[0].id, "failed", error="internal error in the job runner; see the log")

    def _run(self, job: Job) -> None:
        ctx = multiprocessing.get_context("spawn")
        receiver, sender = ctx.Pipe(duplex=False)
        cancel = ctx.Event()
        work_dir = Path(job.work_dir or self.work_root / job.id)
        work_dir.mkdir(parents=True, exist_ok=True)
        process = ctx.Process(target=self.target, args=(job.params, sender, cancel, str(work_dir)), daemon=True)
        process.start()
        sender.close()
        self.store.update(job.id, status="running", started_at=time.time(), pid=process.pid,
                          pid_started=_process_start(process.pid))
        self.store.add_event(job.id, {"type": "status", "status": "running"})
        outcome = watch_worker(
            process, receiver, cancel,
            on_event=lambda data: self.store.add_event(job.id, data),
            should_cancel=lambda: job.id in self._cancel_ids or self._stopping.is_set(),
        )
        self._cancel_ids.discard(job.id)
        self._finish(job, outcome)

    def _finish(self, job: Job, outcome: dict[str, Any]) -> None:
        status = outcome["status"]
        if self._stopping.is_set() and status == "cancelled":
            status, outcome["error"] = "failed", "the server stopped while this job was running"
        if status == "succeeded":
            shutil.rmtree(job.work_dir or "", ignore_errors=True)
        else:
            self._clean(job)
        self.store.finish(job.id, status, error=outcome.get("error"), result=outcome.get("result"))
        if status == "succeeded" and self.on_success is not None:
            try:
                self.on_success(self.get(job.id))
            except Exception:
                log.exception("after job %s: reloading failed", job.id)

    def _clean(self, job: Job) -> None:
        if job.work_dir:
            shutil.rmtree(job.work_dir, ignore_errors=True)
        # Only temp folders whose build lock is free: a CLI build into the same folder keeps its files.
        for directory in self.clean_dirs():
            clean_stale_builds(directory)


def _process_start(pid: int | None) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time()) if pid else None
    except psutil.Error:
        return None


def _stop_orphan(job: Job) -> None:
    """Terminate a worker that outlived its server, if the pid still names that very process."""
    if not job.pid or job.pid_started is None:
        return
    import psutil

    try:
        proc = psutil.Process(job.pid)
        if abs(proc.create_time() - job.pid_started) < 0.01:
            proc.terminate()
            proc.wait(5)
    except psutil.Error:
        pass
