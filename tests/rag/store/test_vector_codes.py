"""Vector codes: the first pass of dense search over large matrices, and the exact scoring after it."""

from __future__ import annotations

import numpy as np
import pytest

from lorag.rag.store import vector_codes, vectors
from lorag.rag.store.vector_codes import VectorCodes, rescore_depth
from lorag.rag.store.vectors import VectorSnapshot


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    m = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_codes_are_four_levels_per_dimension_and_distance_is_their_l1() -> None:
    matrix = np.array([[-2.0], [0.0], [2.0]], dtype=np.float32)  # mean 0, deviation 1.633
    codes = VectorCodes.of(matrix)
    assert [round(float(t), 3) for t in codes.thresholds.ravel()] == [-1.633, 0.0, 1.633]
    # Bits: above -1.633, above 0, above 1.633; packbits puts the first one highest.
    assert codes.words.shape == (1, 3) and [int(w) for w in codes.words[0]] == [0, 0b1000_0000, 0b1110_0000]
    query = np.array([0.5], dtype=np.float32)  # level 2: one level from rows 1 and 2, two from row 0
    assert codes.nearest(query, 1).tolist() == [1, 2]  # every row as close as the farthest kept is kept
    assert codes.nearest(query, 3).tolist() == [0, 1, 2]
    assert codes.nearest(query, 1, start=2).tolist() == [0]


def test_dimensions_that_are_not_a_multiple_of_64_are_padded() -> None:
    matrix = unit_rows(50, 70)
    codes = VectorCodes.of(matrix)
    assert codes.words.shape == (4, 50)  # 210 bits in four words
    assert codes.nearest(matrix[7], 1).tolist() == [7]  # a stored vector is nearest to itself


def test_rescore_depth() -> None:
    assert rescore_depth(100_000, 5) == 4_000 and rescore_depth(30_000, 5) == 2_000
    assert rescore_depth(30_000, 1_000) == 4_000


@pytest.mark.parametrize("collection", [None, "b"])
def test_large_matrices_search_the_nearest_codes_and_score_them_exactly(
        monkeypatch: pytest.MonkeyPatch, collection: str | None) -> None:
    matrix = unit_rows(3_000, 64, seed=1)
    ids = np.arange(100, 3_100, dtype=np.int64)
    snapshot = VectorSnapshot(ids, matrix, {"a": (0, 1_000), "b": (1_000, 3_000)})
    query = matrix[1_500] + 0.3 * matrix[2_500]
    query /= np.linalg.norm(query)
    exact = snapshot.search(query, 10, collection)  # 3,000 rows: below EXACT_BELOW, every row scored
    monkeypatch.setattr(vectors, "EXACT_BELOW", 2_000)
    monkeypatch.setattr(vector_codes, "RESCORE_MIN", 200)
    coded = snapshot.search(query, 10, collection)
    assert coded[:2] == exact[:2] and coded[0][0] == 1_600  # the query's own row first, scores exact
    start = 0 if collection is None else 1_000
    for cid, score in coded:
        assert score == pytest.approx(float(matrix[cid - 100] @ query), abs=1e-6)
        assert cid - 100 >= start
    assert snapshot.search_many(np.stack([query, matrix[2_000]]), 10, collection) == [
        coded, snapshot.search(matrix[2_000], 10, collection)]
