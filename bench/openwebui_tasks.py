"""Answer time of a user's question when Open WebUI's background tasks arrive just before it.

Open WebUI sends title, tags and follow-up generation requests to the chat's model; before the task lane,
lorag answered each as a RAG question in arrival order, so the user's next question waited behind them.
This starts a real `lorag serve` (uvicorn on loopback, the bundled Gemma 3 270M, three sample documents) and
times the question in the same run:

- question alone (the reference);
- "before": the three tasks answered as RAG questions, first come first served (their prompts with the
  ``### Task:`` marker removed, so lorag does not recognise them: what the old server did with all of them);
- "after": the three tasks as Open WebUI sends them: recognised, run on the plain model in the task lane.

    python bench/openwebui_tasks.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

from tests.server.conftest import CORPUS, TEST_DOCS, make_project, start_server
from tests.server.openwebui_tasks import task_request

QUESTION = {"model": "lorag-rag", "messages": [{"role": "user", "content": "経費はいつまでに申請すればよいですか？"}]}
TASKS = ("title", "tags", "follow_ups")


def _post(url: str, body: dict[str, Any], done: dict[str, float], name: str) -> None:
    with httpx.Client(base_url=url, timeout=900) as http:
        assert http.post("/v1/chat/completions", json=body).status_code == 200
    done[name] = time.perf_counter()


def _unrecognised(kind: str) -> dict[str, Any]:
    body = task_request(kind)
    body["messages"][0]["content"] = body["messages"][0]["content"].replace("### Task:", "Task:", 1)
    return body


def one_round(url: str, tasks: list[dict[str, Any]]) -> float:
    """Seconds from sending the question (right after ``tasks``) to its whole answer."""
    done: dict[str, float] = {}
    threads = [threading.Thread(target=_post, args=(url, body, done, f"task{i}")) for i, body in enumerate(tasks)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # arrival order: tasks first, as Open WebUI sends them after the previous answer
    started = time.perf_counter()
    question = threading.Thread(target=_post, args=(url, QUESTION, done, "question"))
    question.start()
    for thread in [*threads, question]:
        thread.join()
    return done["question"] - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64, help="llm.max_tokens of the server")
    args = parser.parse_args()
    from lorag.config import load_config
    from lorag.rag.ingest import ingest_paths

    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for name in TEST_DOCS:
            shutil.copy(CORPUS / name, docs / name)
        project = make_project(Path(tmp) / "p", **{"llm.max_tokens": args.max_tokens, "retrieval.top_k": 3})
        ingest_paths(load_config(project), [docs])
        server = start_server(project)
        try:
            _post(server.url, task_request("title"), {}, "warm-up")  # load the model, not caching the question
            scenarios = {"question alone": lambda: [],
                         "before: tasks as RAG questions, FIFO": lambda: [_unrecognised(k) for k in TASKS],
                         "after: tasks recognised, task lane": lambda: [task_request(k) for k in TASKS]}
            rows: dict[str, list[float]] = {label: [] for label in scenarios}
            for _ in range(args.rounds):
                for label, tasks in scenarios.items():
                    rows[label].append(one_round(server.url, tasks()))
        finally:
            server.stop()
    print(f"\nanswer time of the question, {args.rounds} rounds, llm.max_tokens={args.max_tokens}, "
          f"cores={os.cpu_count()}")
    print(f"| {'scenario':<40} | median s | runs |")
    print(f"|{'-' * 42}|----------|------|")
    for label, times in rows.items():
        print(f"| {label:<40} | {statistics.median(times):8.1f} | {' '.join(f'{t:.1f}' for t in times)} |")


if __name__ == "__main__":
    main()
