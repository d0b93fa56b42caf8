"""The PostgreSQL store's postings table: kept exact by every write, migrated from schema v2, ranked as in SQL."""

from __future__ import annotations

import random

import numpy as np
import pytest

from lorag.rag.store import NewChunk, Store, pg_postings, pg_sql


def _postings(store: Store) -> dict[tuple[str, int], tuple[int, int]]:
    """Every (term, chunk id) -> (tf, chunk length) the postings table holds."""
    out = {}
    for term, data in store._q("SELECT term, data FROM lorag_postings", binary=True).fetchall():  # type: ignore[attr-defined]
        for p in pg_postings.read_bytes(bytes(data)):
            out[(term, int(p["id"]))] = (int(p["tf"]), int(p["len"]))
    return out


def _from_chunks(store: Store) -> dict[tuple[str, int], tuple[int, int]]:
    """The same, counted from the stored tokens."""
    out = {}
    for cid, tokens in store.iter_tokens():
        for t in set(tokens):
            out[(t, cid)] = (min(tokens.count(t), pg_sql.MAX_TF), len(tokens))
    return out


def test_postings_follow_every_write(pg_url: str) -> None:
    with Store(pg_url) as store:
        a = store.replace_document("/d/a.txt", "1", 0, 0, [NewChunk("x", None, 0, 1, ["休暇", "申請", "休暇"]),
                                                             NewChunk("y", None, 0, 1, ["休暇"])])
        store.replace_document("/d/b.txt", "2", 0, 0, [NewChunk("z", None, 0, 1, ["経費", "申請"])],
                               collection="経理")
        ids = store.chunk_ids(a)
        assert _postings(store)[("休暇", ids[0])] == (2, 3)
        assert _postings(store) == _from_chunks(store) and len(_postings(store)) == 5
        store.replace_document("/d/b.txt", "3", 0, 0, [NewChunk("w", None, 0, 1, ["経費"] * 70)])
        store.delete_document(a)
        (cid,) = store.chunk_ids(store.find_document("/d/b.txt").id)  # type: ignore[union-attr]
        assert _postings(store) == _from_chunks(store) == {("経費", cid): (64, 70)}


def test_postings_of_a_collection(pg_url: str) -> None:
    with Store(pg_url) as store:
        store.replace_document("/d/a.txt", "1", 0, 0, [NewChunk("x", None, 0, 1, ["休暇", "申請"])])
        b = store.replace_document("/d/b.txt", "2", 0, 0, [NewChunk("z", None, 0, 1, ["申請"])], collection="経理")
        found = pg_postings.read(store._q, ["申請", "無い"], "経理")  # type: ignore[attr-defined]
        assert list(found) == ["申請"] and found["申請"]["id"].tolist() == store.chunk_ids(b)
        assert [c for c, _ in store.lexical_search(["申請"], 5, collection="経理")] == store.chunk_ids(b)


def _corpus(seed: int = 7) -> list[list[list[str]]]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(40)]
    return [[[rng.choice(words[: rng.randint(3, 40)]) for _ in range(rng.randint(1, 30))] for _ in range(20)]
            for _ in range(6)]


def test_numpy_ranking_equals_the_ranking_query(pg_url: str) -> None:
    with Store(pg_url) as store:
        for i, doc in enumerate(_corpus()):
            store.replace_document(f"/d/{i}.txt", str(i), 0, 0, [NewChunk("t", None, 0, 1, toks) for toks in doc],
                                   collection="odd" if i % 2 else "default")
        n_rows, avgdl, _ = store.term_stats([])
        for terms in (["w1"], ["w30", "w2"], ["w39", "w0", "w7"]):
            _, _, dfs = store.term_stats(terms)
            weights = {t: pg_sql.idf(n_rows, dfs[t]) for t in terms}
            for collection in (None, "odd"):
                queries = [pg_sql.quote_lexeme(t) for t in terms]
                args = [*queries, " | ".join(queries), *([collection] if collection else []), 25]
                want = store._q(pg_sql.bm25_sql(list(weights.values()), avgdl, collection is not None),  # type: ignore[attr-defined]
                                args).fetchall()
                got = pg_postings.rank(store._q, weights, 25, avgdl, collection)  # type: ignore[attr-defined]
                assert got == [int(r[0]) for r in want] and len(got) == 25


def test_a_schema_v2_store_gets_its_postings_on_first_open(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with Store(pg_url) as store:
        for i, doc in enumerate(_corpus()):
            store.replace_document(f"/d/{i}.txt", str(i), 0, 0, [NewChunk("t", None, 0, 1, toks) for toks in doc])
        before = store.lexical_search(["w3", "w20"], 10)
        expected = _postings(store)
        store._q("DROP TABLE lorag_postings")  # type: ignore[attr-defined]
        store._q("DELETE FROM lorag_meta WHERE key = 'postings'")  # type: ignore[attr-defined]
        store._q("UPDATE lorag_schema SET version = 2")  # type: ignore[attr-defined]
    with caplog.at_level("WARNING", logger="lorag.rag.store.postgres"), Store(pg_url) as store:
        assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
            f"the store {store.path} lacks the lexical postings of schema version 3: writing those of 120 chunks"]
        assert store._q("SELECT version FROM lorag_schema").fetchone() == (3,)  # type: ignore[attr-defined]
        assert store.get_meta("postings") == "exact"
        assert _postings(store) == expected and len(expected) == len(_from_chunks(store))
        assert store.lexical_search(["w3", "w20"], 10) == before and len(before) == 10


def test_a_bulk_load_writes_the_postings_at_its_end(pg_url: str) -> None:
    with Store(pg_url) as store:
        with store.bulk_load():
            store.replace_document("/d/a.txt", "1", 0, 0, [NewChunk("x", None, 0, 1, ["休暇", "申請"])])
            assert store.get_meta("postings") == "stale" and not _postings(store)
        assert store.get_meta("postings") == "exact"
        assert _postings(store) == _from_chunks(store) and len(_postings(store)) == 2


def test_the_top_of_many_keeps_ties_in_id_order() -> None:
    ids = np.array([9, 5, 3, 1, 7, 2], dtype=np.int64)
    scores = np.array([1.0, 2.0, 2.0, 2.0, 0.5, 3.0])
    assert pg_postings._top(ids, scores, 3).tolist() == [2, 1, 3]
    assert pg_postings._top(ids, scores, 10).tolist() == [2, 1, 3, 5, 9, 7]


def test_a_rebuild_writes_documents_in_batches(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pg_postings._batches([(1, 15_000), (2, 4_000), (3, 1_000), (4, 30_000), (5, 1)]) == [[1, 2, 3], [4], [5]]
    monkeypatch.setattr(pg_postings, "BATCH_CHUNKS", 25)  # the 6 documents of 20 chunks go in 6 statements
    with Store(pg_url) as store:
        for i, doc in enumerate(_corpus()):
            store.replace_document(f"/d/{i}.txt", str(i), 0, 0, [NewChunk("t", None, 0, 1, toks) for toks in doc])
        expected = _postings(store)
        with store.transaction():
            pg_postings.rebuild(store._q)  # type: ignore[attr-defined]
        assert _postings(store) == expected == _from_chunks(store) and len(expected) > 100
