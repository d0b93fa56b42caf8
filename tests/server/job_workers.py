"""A scripted stand-in for the build worker, to test the job machinery (queue, cancel, restart) in isolation.

It follows the worker contract of lorag/server/worker.py: progress dicts, then one result or error message.
The build name picks the script: "quick-*" succeeds, "fail-*" fails, "slow-*" runs until cancelled.
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def scripted_job(params: dict[str, Any], conn: Connection, cancel: Any, work_dir: str) -> None:
    from lorag.config import load_config

    name = params.get("name") or "quick"
    output_dir = load_config(params["config_path"]).output_dir
    (Path(work_dir) / "partial.bin").write_bytes(b"half a model")
    (output_dir / ".lorag-tmp-build").mkdir(parents=True, exist_ok=True)
    for stage in ("validate", "merge"):
        for percent in (0, 50, 100):
            conn.send({"type": "progress", "stage": stage, "percent": percent, "bytes_done": percent,
                       "bytes_total": 100, "message": f"{stage} {percent}%"})
    if name.startswith("fail"):
        conn.send({"type": "error", "error": "merge failed: the adapter does not match its base"})
    elif name.startswith("slow"):
        deadline = time.monotonic() + 120
        while not cancel.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(60)  # ignore the cancel flag, as a stuck converter would: the server must terminate us
    else:
        (output_dir / ".lorag-tmp-build").rmdir()
        conn.send({"type": "result", "result": {"gguf": "x.gguf", "size_bytes": 123,
                                                 "fidelity": {"kl_mean": 0.01, "top1": 0.97}}})
    conn.close()
