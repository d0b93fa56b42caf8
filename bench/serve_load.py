"""Load test: N concurrent streamed questions to a real `lorag serve` on loopback; all must be answered.

Generation is serialized (one model thread, FIFO), so latency under load is mostly queueing: the table
compares it with one unloaded query measured first in the same run (N × that ≈ the last answer's wait).
It also times /api/health during the load, to show the server stays responsive.

    python bench/serve_load.py                       # temp project with 3 sample documents
    python bench/serve_load.py --config lorag.yaml -n 50 --max-tokens 8 --top-k 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "corpus"
DOCS = ("経費精算規程.pdf", "就業規則.md", "休暇制度.docx")
QUESTIONS = [q["question"] for q in json.loads((ROOT / "examples" / "questions.json").read_text("utf-8"))]


def make_project(folder: Path, max_tokens: int, top_k: int) -> Path:
    """A temp project with three sample documents ingested."""
    from lorag.config import init_config, load_config, update_config
    from lorag.rag.ingest import ingest_paths

    docs = folder / "docs"
    docs.mkdir(parents=True)
    for name in DOCS:
        shutil.copy(CORPUS / name, docs / name)
    path = init_config(folder / "lorag.yaml")
    update_config(path, {"llm.max_tokens": max_tokens, "retrieval.top_k": top_k})
    ingest_paths(load_config(path), [docs])
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(config: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LORAG_CONFIG": str(config), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "lorag", "serve", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                if (await client.get(f"{url}/api/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("server did not start")


async def ask(client: Any, url: str, question: str) -> dict[str, Any]:
    """One streamed question: total latency, time to the first token, and whether it ended with "done"."""
    start = time.perf_counter()
    first: float | None = None
    events: list[str] = []
    async with client.stream("POST", f"{url}/api/query", json={"question": question, "stream": True}) as resp:
        status = resp.status_code
        async for line in resp.aiter_lines():
            if line.startswith("event:"):
                events.append(line[6:].strip())
                if events[-1] == "token" and first is None:
                    first = time.perf_counter() - start
    ok = status == 200 and events[-1:] == ["done"] and "error" not in events
    return {"ok": ok, "status": status, "latency": time.perf_counter() - start, "ttft": first, "events": events}


async def poll_health(client: Any, url: str, stop: asyncio.Event, out: list[float], queue: list[int]) -> None:
    """Time /api/health while the queries run, and note the model queue's length."""
    while not stop.is_set():
        start = time.perf_counter()
        reply = await client.get(f"{url}/api/health")
        out.append(time.perf_counter() - start)
        queue.append(int(reply.json()["model_queue"]["waiting"]))
        await asyncio.sleep(0.5)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(url: str, n: int) -> None:
    import httpx

    limits = httpx.Limits(max_connections=n + 5)
    async with httpx.AsyncClient(timeout=httpx.Timeout(3600), limits=limits) as client:
        await ask(client, url, QUESTIONS[0])  # warm-up: loads the model and the retriever
        single = await ask(client, url, QUESTIONS[1])
        stop, health, queue = asyncio.Event(), [], []
        before = (await client.get(f"{url}/api/health")).json()["model_queue"]
        poller = asyncio.create_task(poll_health(client, url, stop, health, queue))
        started = time.perf_counter()
        results = await asyncio.gather(*(ask(client, url, QUESTIONS[i % len(QUESTIONS)]) for i in range(n)),
                                       return_exceptions=True)
        wall = time.perf_counter() - started
        stop.set()
        await poller
        after = (await client.get(f"{url}/api/health")).json()["model_queue"]
    served = after["served"] - before["served"]
    service = (after["busy_s"] - before["busy_s"]) / served if served else 0.0
    report(n, single, results, wall, health, service, max(queue, default=0))


def report(n: int, single: dict[str, Any], results: list[Any], wall: float, health: list[float],
           service: float, longest_queue: int) -> None:
    good = [r for r in results if isinstance(r, dict) and r["ok"]]
    failed = [r for r in results if not (isinstance(r, dict) and r["ok"])]
    errors = [r if isinstance(r, BaseException) else r["status"] for r in failed]
    lat = [r["latency"] for r in good]
    ttft = [r["ttft"] for r in good if r["ttft"] is not None]
    rows = [
        ("concurrent queries", f"{n}"),
        ("answered / errors", f"{len(good)} / {len(errors)}"),
        ("one query alone (reference)", f"{single['latency']:.2f} s"),
        ("latency p50", f"{statistics.median(lat):.2f} s" if lat else "-"),
        ("latency p95", f"{pct(lat, 95):.2f} s" if lat else "-"),
        ("latency max", f"{max(lat):.2f} s" if lat else "-"),
        ("first token p50 / p95", f"{statistics.median(ttft):.2f} s / {pct(ttft, 95):.2f} s" if ttft else "-"),
        ("wall time, all answered", f"{wall:.1f} s"),
        ("throughput", f"{len(good) / wall:.2f} answers/s"),
        ("longest model queue seen", f"{longest_queue} waiting"),
        ("model busy per answer (under load)", f"{service:.2f} s"),
        ("queueing share of mean latency", f"{1 - service / statistics.mean(lat):.0%}" if lat else "-"),
        ("serial estimate (N × alone)", f"{n * single['latency']:.1f} s"),
        ("/api/health during load p95", f"{pct(health, 95) * 1000:.0f} ms" if health else "-"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"| {'measure'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|")
    for key, value in rows:
        print(f"| {key.ljust(width)} | {value} |")
    if errors:
        print("errors:", errors[:5])
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="an existing project (default: a temp one with 3 documents)")
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = args.config or make_project(Path(tmp) / "p", args.max_tokens, args.top_k)
        port = free_port()
        proc = start_server(config.resolve(), port)
        url = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(wait_ready(url, proc))
            asyncio.run(run(url, args.n))
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
