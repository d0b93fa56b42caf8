"""The SQLite store's lexical side: candidates from FTS5 postings ranked in numpy, terms counted in token strings."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lorag.rag.store import NewChunk, Store
from lorag.rag.store.sqlite_lexical import count_terms, postings, rank_candidates


def chunk(tokens: list[str]) -> NewChunk:
    return NewChunk("".join(tokens), None, 0, 1, tokens)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "lorag.db")
    s.replace_document("/d/a.txt", "a", 0.0, 0, [chunk(["休暇", "申請"]),                     # id 1
                                               chunk(["休暇", "休暇", "休暇", "規程"]),        # id 2
                                               chunk(["Debian", "パッケージ", "休暇"]),        # id 3
                                               chunk(["New York", "休暇"])])                   # id 4
    s.replace_document("/d/b.txt", "b", 0.0, 0, [chunk(["申請", "経費"])], collection="経理")  # id 5
    return s


def test_count_terms_counts_adjacent_repeats_and_never_inside_a_longer_token() -> None:
    rows = [(1, "a\x1fa\x1fab\x1fb"), (2, ""), (3, "x\x1f\x1fa")]
    assert count_terms(rows, ["a", "b", "ab", "z"]) == {1: (4, {"a": 2, "b": 1, "ab": 1}), 2: (0, {}),
                                                         3: (3, {"a": 1})}


def test_postings_carry_occurrences_and_fold_case_like_the_index(store: Store) -> None:
    db = store._db  # type: ignore[attr-defined]
    store.lexical_search(["休暇"], 1)  # opens the per-occurrence view
    ids, tf = postings(db, "休暇")
    assert ids.tolist() == [1, 2, 3, 4] and tf.tolist() == [1, 3, 1, 1]
    assert postings(db, "Debian")[0].tolist() == [3]
    ids, tf = postings(db, "New York")  # two index terms: found by phrase, counted once
    assert ids.tolist() == [4] and tf.tolist() == [1]
    assert postings(db, "申請", "経理")[0].tolist() == [5]
    assert postings(db, "存在しない")[0].tolist() == []


def test_candidates_rank_by_weighted_saturated_counts_then_id(store: Store) -> None:
    db = store._db  # type: ignore[attr-defined]
    store.lexical_search(["休暇"], 1)
    assert rank_candidates(db, {"休暇": 1.0}, 10) == [2, 1, 3, 4]  # tf 3 first; equal counts by id
    assert rank_candidates(db, {"規程": 2.0, "申請": 1.0}, 2) == [2, 1]
    assert rank_candidates(db, {"申請": 1.0}, 10, collection="経理") == [5]
    assert rank_candidates(db, {"無い": 1.0}, 10) == []


def test_lexical_search_scores_candidates_with_lucene_bm25(store: Store) -> None:
    n, avgdl = 5, 13 / 5
    idf = math.log(1 + (n - 4 + 0.5) / (4 + 0.5))

    def bm25(tf: int, length: int) -> float:
        return idf * tf / (tf + 1.5 * (1 - 0.75 + 0.75 * length / avgdl))

    ranking = store.lexical_search(["休暇"], 4)
    assert [cid for cid, _ in ranking] == [2, 1, 4, 3]  # equal scores keep the candidates' order
    assert [round(s, 6) for _, s in ranking] == [round(bm25(3, 4), 6), round(bm25(1, 2), 6), round(bm25(1, 2), 6),
                                                 round(bm25(1, 3), 6)]
