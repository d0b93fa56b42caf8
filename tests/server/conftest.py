"""Real servers for the web tests: uvicorn on a loopback port, a real store with ingested Japanese documents."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CORPUS = Path(__file__).resolve().parents[2] / "examples" / "corpus"
TEST_DOCS = ("経費精算規程.pdf", "就業規則.md", "休暇制度.docx")


@dataclass
class LiveServer:
    """A running lorag server and how to talk to it."""

    url: str
    token: str
    config_path: Path
    app: Any
    server: Any
    thread: threading.Thread

    def client(self, auth: bool = True, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=600, **kwargs)

    @property
    def state(self) -> Any:
        return self.app.state.lorag

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(config_path: Path, job_target: Any = None) -> LiveServer:
    """Create the app for ``config_path`` and serve it with uvicorn on a free loopback port."""
    import uvicorn

    from lorag.config import load_config
    from lorag.server.app import create_app

    app = create_app(load_config(config_path), job_target=job_target)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return LiveServer(f"http://127.0.0.1:{port}", app.state.token, config_path, app, server, thread)


def make_project(folder: Path, **changes: Any) -> Path:
    """A lorag.yaml in ``folder`` with small generation limits for fast tests, plus ``changes``."""
    from lorag.config import init_config, update_config

    folder.mkdir(parents=True, exist_ok=True)
    path = init_config(folder / "lorag.yaml")
    update_config(path, {"llm.max_tokens": 12, "retrieval.top_k": 2, **changes})
    return path


def models_server(tmp_path_factory: pytest.TempPathFactory, name: str, *roots: Path) -> Iterator[LiveServer]:
    """A live server whose project may read models under ``roots``; stopped when the generator ends."""
    project = make_project(tmp_path_factory.mktemp(name) / "p", **{"models.roots": [str(r) for r in roots]})
    server = start_server(project)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one folder the servers may read models from."""
    return tmp_path_factory.mktemp("models-root")


@pytest.fixture(scope="session")
def ingested_project(tmp_path_factory: pytest.TempPathFactory, models_root: Path) -> Path:
    """A project whose store holds three real Japanese documents (pdf, md, docx)."""
    from lorag.config import load_config
    from lorag.rag.ingest import ingest_paths

    folder = tmp_path_factory.mktemp("project")
    docs = folder / "docs"
    docs.mkdir()
    for name in TEST_DOCS:
        shutil.copy(CORPUS / name, docs / name)
    config_path = make_project(folder, **{"models.roots": [str(models_root)]})
    report = ingest_paths(load_config(config_path), [docs])
    assert report.ok and len(report.added) == len(TEST_DOCS)
    return config_path


@pytest.fixture(scope="session")
def live(ingested_project: Path) -> Iterator[LiveServer]:
    """One real server over the ingested project, shared by the API tests."""
    server = start_server(ingested_project)
    yield server
    server.stop()


@pytest.fixture
def bare(tmp_path: Path, models_root: Path) -> Iterator[LiveServer]:
    """A fresh server over an empty project (no documents), for config and security tests."""
    server = start_server(make_project(tmp_path / "bare", **{"models.roots": [str(models_root)]}))
    yield server
    server.stop()


def sse_events(response: httpx.Response) -> list[tuple[str, Any]]:
    """Parse a whole text/event-stream response into (event name, JSON data) pairs."""
    import json

    events = []
    for frame in response.text.split("\n\n"):
        name, data = "message", []
        for line in frame.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events
