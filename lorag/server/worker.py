"""The build worker process and the parent-side loop that follows it.

The worker runs ``lorag.build.pipeline.run_build`` and sends plain dicts over a pipe:
``{"type": "progress", "stage", "percent", "bytes_done", "bytes_total", "message"}``, then one
``{"type": "result", "result": {...}}`` or ``{"type": "error", "error": "..."}``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 2.0  # time the pipeline gets to stop by itself before its process tree is terminated
STORE_EVERY_S = 0.25  # progress events inside one stage are stored at most this often


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...

    def set(self) -> None: ...


WorkerTarget = Callable[[dict[str, Any], Connection, Any, str], None]


def run_build_job(params: dict[str, Any], conn: Connection, cancel: CancelFlag, work_dir: str) -> None:
    """Worker process entry: run one build (switching the config unless asked not to) and report over ``conn``."""
    # Temp files of the pipeline land in the job's own folder, so a cancel or crash can remove them all.
    os.environ["TMPDIR"] = work_dir
    tempfile.tempdir = None
    try:
        from lorag.build.pipeline import BuildRequest, run_build
        from lorag.config import load_config

        config = load_config(params["config_path"])
        request = BuildRequest(
            lora_path=Path(params["lora_path"]),
            quantization=params["quantization"],
            name=params.get("name"),
            mode=params["mode"],
            register=params["register"],
            update_config=params.get("update_config", True),
            roots=tuple(Path(root) for root in params.get("roots") or ()),
            eval_prompts=Path(params["eval_prompts"]) if params.get("eval_prompts") else None,
        )

        def progress(event: dict[str, Any]) -> None:
            conn.send({"type": "progress", **event})

        result = run_build(config, request, progress=progress, cancel=cancel)
        conn.send({"type": "result", "result": result.to_dict()})
    except Exception as exc:  # every failure goes back to the server as one line (a bug's traceback to a log file)
        from lorag.crashlog import failure_line

        conn.send({"type": "error", "error": failure_line(exc, "the build", log_dir=_log_dir(params))})
    finally:
        conn.close()


def _log_dir(params: dict[str, Any]) -> Path | None:
    try:
        from lorag.config import load_config

        return load_config(params["config_path"]).data_dir / "logs"
    except Exception:  # the config itself may be what failed: fall back to the default log folder
        return None


def watch_worker(
    process: Any,
    receiver: Connection,
    cancel: CancelFlag,
    on_event: Callable[[dict[str, Any]], Any],
    should_cancel: Callable[[], bool],
) -> dict[str, Any]:
    """Relay the worker's events until it exits; cancel it on request. Return status, result and error."""
    result: dict[str, Any] | None = None
    error: str | None = None
    cancelled_at: float | None = None
    throttle = _Throttle(on_event)
    while True:
        if cancelled_at is None and should_cancel():
            cancelled_at = time.monotonic()
            cancel.set()
            on_event({"type": "progress", "stage": "cancel", "percent": 0, "message": "cancelling"})
        if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE_S and process.is_alive():
            terminate_tree(process)
        try:
            if receiver.poll(0.2):
                message = receiver.recv()
                if message.get("type") == "progress":
                    throttle.offer(message)
                elif message.get("type") == "result":
                    result = message["result"]
                elif message.get("type") == "error":
                    error = message["error"]
                continue
        except (EOFError, OSError):
            process.join(CANCEL_GRACE_S + 5 if cancelled_at else 30)
        if not process.is_alive():
            break
    throttle.flush()
    process.join(5)
    if process.is_alive():
        terminate_tree(process)
    receiver.close()
    return _outcome(result, error, cancelled_at is not None, process.exitcode)


def _outcome(result: dict[str, Any] | None, error: str | None, cancelled: bool, code: int | None) -> dict[str, Any]:
    if cancelled:
        return {"status": "cancelled", "error": "cancelled by the user"}
    if result is not None:
        return {"status": "succeeded", "result": result}
    if error:
        return {"status": "failed", "error": error}
    return {"status": "failed", "error": f"the build worker exited (code {code}) without a result"}


class _Throttle:
    """Pass on stage changes and messages at once, and plain percent updates at most every STORE_EVERY_S."""

    def __init__(self, emit: Callable[[dict[str, Any]], Any]) -> None:
        self.emit = emit
        self.stage: str | None = None
        self.last = 0.0
        self.pending: dict[str, Any] | None = None

    def offer(self, event: dict[str, Any]) -> None:
        now = time.monotonic()
        important = event.get("stage") != self.stage or (event.get("percent") or 0) >= 100
        if important or now - self.last >= STORE_EVERY_S:
            self.emit(event)
            self.stage, self.last, self.pending = event.get("stage"), now, None
        else:
            self.pending = event

    def flush(self) -> None:
        if self.pending is not None:
            self.emit(self.pending)
            self.pending = None


def terminate_tree(process: Any) -> None:
    """Terminate a worker process and its children (converter subprocesses); kill what ignores SIGTERM."""
    import psutil

    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        children = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    # The worker itself goes through multiprocessing, which reaps it (psutil reaping it would confuse is_alive()).
    process.terminate()
    _, alive = psutil.wait_procs(children, timeout=3)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    process.join(3)
    if process.is_alive():
        process.kill()
        process.join(3)
