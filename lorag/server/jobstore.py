"""Jobs and their progress events in SQLite (``<data_dir>/jobs.db``), so history survives a restart."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL,
    params TEXT NOT NULL, result TEXT, error TEXT, work_dir TEXT,
    pid INTEGER, pid_started REAL,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key, status);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""


@dataclass
class Job:
    """One build (or other long task) and where it stands."""

    id: str
    kind: str
    key: str
    status: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    work_dir: str | None
    pid: int | None
    pid_started: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """The job as the API shows it (without internal process details)."""
        data = asdict(self)
        for private in ("key", "work_dir", "pid", "pid_started"):
            data.pop(private)
        return data


def _job(row: sqlite3.Row) -> Job:
    data = dict(row)
    data["params"] = json.loads(data["params"])
    data["result"] = json.loads(data["result"]) if data["result"] else None
    return Job(**data)


class JobStore:
    """SQLite access to jobs and events; one short-lived connection per call, so any thread may use it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.row_factory = sqlite3.Row
            with db:
                yield db

    def insert(self, job: Job) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO jobs (id, kind, key, status, params, work_dir, created_at) VALUES (?,?,?,?,?,?,?)",
                (job.id, job.kind, job.key, job.status, json.dumps(job.params), job.work_dir, job.created_at),
            )

    def get(self, job_id: str) -> Job | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def recent(self, limit: int = 100) -> list[Job]:
        """The newest jobs first."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
        return [_job(r) for r in rows]

    def active_with_key(self, key: str) -> Job | None:
        with self._db() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE key = ? AND status IN ('queued', 'running') ORDER BY created_at LIMIT 1",
                (key,),
            ).fetchone()
        return _job(row) if row else None

    def with_status(self, *statuses: str) -> list[Job]:
        marks = ",".join("?" * len(statuses))
        with self._db() as db:
            rows = db.execute(f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY created_at", statuses).fetchall()
        return [_job(r) for r in rows]

    def update(self, job_id: str, **fields: Any) -> None:
        if "result" in fields and fields["result"] is not None:
            fields["result"] = json.dumps(fields["result"])
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self._db() as db:
            db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))

    def finish(self, job_id: str, status: str, error: str | None = None, result: dict[str, Any] | None = None) -> None:
        """Mark a job finished, and record the final status as its last event."""
        self.update(job_id, status=status, error=error, result=result, finished_at=time.time(), pid=None)
        self.add_event(job_id, {"type": "status", "status": status, "error": error, "result": result})

    def add_event(self, job_id: str, data: dict[str, Any]) -> int:
        """Append an event; return its sequence number (1, 2, ...)."""
        with self._db() as db:
            row = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE job_id = ?", (job_id,)).fetchone()
            seq = int(row[0])
            db.execute(
                "INSERT INTO events (job_id, seq, at, data) VALUES (?,?,?,?)",
                (job_id, seq, time.time(), json.dumps(data, ensure_ascii=False)),
            )
        return seq

    def events_after(self, job_id: str, seq: int = 0) -> list[dict[str, Any]]:
        """Events with a sequence number above ``seq``, oldest first, each with its ``seq`` and ``at``."""
        with self._db() as db:
            rows = db.execute(
                "SELECT seq, at, data FROM events WHERE job_id = ? AND seq > ? ORDER BY seq", (job_id, seq)
            ).fetchall()
        return [{"seq": r["seq"], "at": r["at"], **json.loads(r["data"])} for r in rows]
