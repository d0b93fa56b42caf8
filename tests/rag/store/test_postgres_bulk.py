"""The PostgreSQL store's binary COPY path and bulk load, against a real PostgreSQL with pgvector."""

from __future__ import annotations

import numpy as np

from lorag.rag.store import NewChunk, Store, pg_copy, pg_sql, pg_terms
from tests.rag.store.conftest import needs_pgvector_cpu

TOKENS = ["休暇", "申請", "休暇", "it's", "a\\b", "z", "ab", "a", "休暇", " ", "x" * 2100, "nul\x00byte"]


def test_binary_tsvector_equals_the_text_spelling(pg_url: str) -> None:
    with Store(pg_url) as store:
        db = store._db  # type: ignore[attr-defined]
        from_text = db.execute("SELECT %s::tsvector::text", (pg_sql.tsvector_text(TOKENS),)).fetchone()[0]
        db.execute("CREATE TEMP TABLE t (v tsvector)")
        with db.cursor().copy("COPY t (v) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(pg_copy.HEADER + b"\x00\x01" + len(tsv := pg_copy.tsvector(TOKENS)).to_bytes(4, "big")
                       + tsv + pg_copy.TRAILER)
        from_binary = db.execute("SELECT v::text FROM t").fetchone()[0]
    assert from_binary == from_text == "'a':1 'a\\\\b':1 'ab':1 'it''s':1 'z':1 '休暇':1,2,3 '申請':1"


@needs_pgvector_cpu
def test_chunks_copied_in_binary_read_back_exactly(pg_url: str) -> None:
    rng = np.random.default_rng(3)
    chunks = [NewChunk(f"本文{i}", i if i % 2 else None, i, i + 5, ["本文", f"t{i}"] * (i + 1),
                       rng.standard_normal(384).astype(np.float32) if i != 3 else None, "iv" if i == 1 else None)
              for i in range(1203)]  # three COPY batches of at most 500
    with Store(pg_url) as store:
        doc = store.replace_document("/d/長い.txt", "s", 1.0, 2, chunks)
        back = store.document_chunks(doc)
        tf = store._db.execute(  # type: ignore[attr-defined]
            "SELECT lorag_tf(ts_rank('{1,1,1,1}', tsv, 't70'::tsquery)) FROM lorag_chunks WHERE ord = 70").fetchone()
    assert [(c.text, c.page, c.start, c.end, c.tokens, c.page_label) for c in back] == [
        (c.text, c.page, c.start, c.end, c.tokens, c.page_label) for c in chunks]
    assert all(np.array_equal(a.vector, b.vector) for a, b in zip(back, chunks, strict=True) if b.vector is not None)
    assert back[3].vector is None and tf == (64,)  # 71 occurrences, positions kept up to MAX_TF


@needs_pgvector_cpu
def test_bulk_load_rebuilds_the_search_indexes_once(pg_url: str) -> None:
    rng = np.random.default_rng(4)
    with Store(pg_url) as store:
        with store.bulk_load():
            for d in range(3):
                store.replace_document(f"/d/{d}.txt", "s", 0.0, 0, [
                    NewChunk(f"休暇{d}-{i}", None, 0, 4, ["休暇", f"d{d}"], rng.standard_normal(8).astype(np.float32))
                    for i in range(20)])
            during = _search_indexes(store)
        after = _search_indexes(store)
        assert store.lexical_search(["d1"], 3)[0][0] in store.chunk_ids(2)
        assert store.dense_search(rng.standard_normal(8).astype(np.float32), 5) != []
        assert set(store.index_seconds) == {"gin", "hnsw_8", "statistics", "postings"}  # type: ignore[attr-defined]
    assert (during, after) == ([], ["lorag_chunks_hnsw_8", "lorag_chunks_tsv"])


def test_build_settings_size_memory_to_the_graph() -> None:
    assert pg_sql.build_settings(1_000_000, 384, 2) == ["SET LOCAL maintenance_work_mem = '3115MB'",
                                                        "SET LOCAL max_parallel_maintenance_workers = 1"]
    assert pg_sql.build_settings(100, 384, None) == ["SET LOCAL maintenance_work_mem = '256MB'"]
    assert pg_sql.build_settings(10_000_000, 768, 64)[0] == "SET LOCAL maintenance_work_mem = '8192MB'"
    assert pg_sql.build_settings(10_000_000, 768, 64)[1].endswith("= 7")


def _search_indexes(store: Store) -> list[str]:
    rows = store._db.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'lorag_chunks' AND "  # type: ignore[attr-defined]
                             "indexname IN ('lorag_chunks_tsv') OR indexname LIKE 'lorag_chunks_hnsw%' "
                             "ORDER BY indexname").fetchall()
    return [r[0] for r in rows]


def _stats(store: Store) -> tuple[tuple[int, int], dict[str, int]]:
    q = store._q  # type: ignore[attr-defined]
    return pg_terms.totals(q), {t: df for t, df in q("SELECT term, df FROM lorag_terms WHERE df > 0").fetchall()}


def _recount(store: Store) -> tuple[tuple[int, int], dict[str, int]]:
    q = store._q  # type: ignore[attr-defined]
    chunks, tokens = q("SELECT COUNT(*), COALESCE(SUM(n_tokens), 0) FROM lorag_chunks").fetchone()
    dfs = q("SELECT lexeme, COUNT(*) FROM lorag_chunks, unnest(tsv) GROUP BY lexeme").fetchall()
    return (int(chunks), int(tokens)), {t: int(n) for t, n in dfs}


def test_bm25_statistics_follow_every_write(pg_url: str) -> None:
    with Store(pg_url) as store:
        a = store.replace_document("/d/a.txt", "1", 0, 0, [NewChunk("x", None, 0, 1, ["休暇", "申請", "休暇"]),
                                                             NewChunk("y", None, 0, 1, ["休暇"])])
        store.replace_document("/d/b.txt", "2", 0, 0, [NewChunk("z", None, 0, 1, ["経費", "申請"])])
        assert _stats(store) == ((3, 6), {"休暇": 2, "申請": 2, "経費": 1}) == _recount(store)
        store.replace_document("/d/b.txt", "3", 0, 0, [NewChunk("w", None, 0, 1, ["経費"])] * 2)
        store.delete_document(a)
        assert _stats(store) == ((2, 2), {"経費": 2}) == _recount(store)
        assert store.term_stats(["経費", "休暇", "無い"]) == (2, 1.0, {"経費": 2, "休暇": 0, "無い": 0})


def test_a_store_left_by_a_killed_bulk_load_or_an_older_schema_is_recounted(pg_url: str) -> None:
    with Store(pg_url) as store:
        store.replace_document("/d/a.txt", "1", 0, 0, [NewChunk("x", None, 0, 1, ["休暇", "申請"])])
        store._q("TRUNCATE lorag_terms")  # type: ignore[attr-defined]
        store._q("DROP INDEX lorag_chunks_tsv")  # type: ignore[attr-defined]
        store._q("UPDATE lorag_schema SET version = 1")  # type: ignore[attr-defined]
        store.set_meta("term_stats", "stale")
    with Store(pg_url) as store:
        assert _stats(store) == ((1, 2), {"休暇": 1, "申請": 1})
        assert store._q("SELECT version FROM lorag_schema").fetchone() == (pg_sql.SCHEMA_VERSION,)  # type: ignore[attr-defined]
        assert store._q("SELECT to_regclass('lorag_chunks_tsv') IS NOT NULL").fetchone() == (True,)  # type: ignore[attr-defined]
