"""Dense search in PostgreSQL: HNSW, and collection filters that still return k answers on pgvector 0.6."""

from __future__ import annotations

import numpy as np

from lorag.rag.store import NewChunk, Store, pg_dense
from tests.rag.store.conftest import needs_pgvector_cpu

SIZES = {"big": 1800, "mid": 180, "tiny": 20}


def _fill(store: Store) -> tuple[dict[int, str], dict[int, np.ndarray]]:
    """Three collections of 90 %, 9 % and 1 % of 2,000 chunks; each chunk's collection and vector by id."""
    rng = np.random.default_rng(7)
    owner: dict[int, str] = {}
    by_id: dict[int, np.ndarray] = {}
    with store.bulk_load():
        for name, n in SIZES.items():
            vectors = rng.standard_normal((n, 8)).astype(np.float32)
            doc = store.replace_document(f"/d/{name}.txt", "s", 0.0, 0, [
                NewChunk(f"{name}{i}", None, 0, 1, [name], vectors[i]) for i in range(n)], collection=name)
            for cid, vector in zip(store.chunk_ids(doc), vectors, strict=True):
                owner[cid], by_id[cid] = name, vector
    return owner, by_id


def _true_best(vectors: dict[int, np.ndarray], owner: dict[int, str], query: np.ndarray, k: int,
               collection: str) -> list[int]:
    q = query / np.linalg.norm(query)
    scores = {cid: float(v @ q / np.linalg.norm(v)) for cid, v in vectors.items() if owner[cid] == collection}
    return sorted(scores, key=lambda cid: (-scores[cid], cid))[:k]


@needs_pgvector_cpu
def test_collection_filters_return_k_answers(pg_url: str) -> None:
    with Store(pg_url) as store:
        owner, vectors = _fill(store)
        query = np.random.default_rng(8).standard_normal(8).astype(np.float32)
        shares = {name: round(store.collection_share(name), 3) for name in SIZES}  # type: ignore[attr-defined]
        got = {name: store.dense_search(query, 50, name) for name in SIZES}
        everything = store.dense_search(query, 50)
        reference = pg_dense.exact(store, query, 50)
    assert shares == {"big": 0.9, "mid": 0.09, "tiny": 0.01}
    assert {name: len(r) for name, r in got.items()} == {"big": 50, "mid": 50, "tiny": 20}
    assert all(owner[cid] == name for name, r in got.items() for cid, _ in r)
    # ef 112 for "big" goes through HNSW; "mid" would need ef 1112 (> 1000) and "tiny" is smaller than k: exact.
    assert [cid for cid, _ in got["mid"]] == _true_best(vectors, owner, query, 50, "mid")
    assert [cid for cid, _ in got["tiny"]] == _true_best(vectors, owner, query, 50, "tiny")
    assert len({cid for cid, _ in everything} & {cid for cid, _ in reference}) >= 45
    assert [s for _, s in everything] == sorted((s for _, s in everything), reverse=True)


@needs_pgvector_cpu
def test_the_exact_scan_stays_exact_once_the_statement_is_prepared(pg_url: str) -> None:
    # psycopg prepares a statement after 5 runs; a plan cached under one planner setting would ignore the next.
    rng = np.random.default_rng(9)
    with Store(pg_url) as store:
        owner, vectors = _fill(store)
        for _ in range(8):
            query = rng.standard_normal(8).astype(np.float32)
            store.dense_search(query, 50)  # the HNSW statement, prepared too
            got = [cid for cid, _ in store.dense_search(query, 50, "mid")]
            assert got == _true_best(vectors, owner, query, 50, "mid")
