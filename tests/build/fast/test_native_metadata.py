"""In-process GGUF metadata against llama.cpp's converter: every key, value, tensor and small tensor equal."""

from __future__ import annotations

import os
import subprocess
import sys
from hashlib import sha256
from pathlib import Path

import pytest

from lorag.build.fast import tokenizer_meta
from lorag.build.fast.metadata import NativeMetadata, native_metadata, write_native_skeleton
from lorag.build.fast.skeleton import STREAMED, Skeleton, SkeletonJob, load_skeleton, stage_model_dir
from tests.helpers.model_dirs import R1_TEMPLATE


def _tree() -> Path:
    from lorag.build.convert import ensure_converters

    return ensure_converters()


def _converter(model_dir: Path, work: Path, pre: str | None = None, model_name: str | None = None) -> Skeleton:
    """llama.cpp's own answer for ``model_dir`` (optionally naming an unlisted BPE fingerprint ``pre``)."""
    if pre is None:
        return SkeletonJob(model_dir, work, _tree(), model_name).result()
    work.mkdir(parents=True, exist_ok=True)
    oracle = Path(__file__).resolve().parents[2] / "helpers" / "converter_oracle.py"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(_tree() / "gguf-py"), "ORACLE_PRE": pre}
    subprocess.run([sys.executable, str(oracle), str(_tree()), str(model_dir), str(work), STREAMED,
                    model_name or ""],
                   cwd=_tree(), env=env, check=True, capture_output=True)
    return load_skeleton(work)


def _assert_same(native: NativeMetadata, ref: Skeleton) -> None:
    assert [k for k, *_ in native.kv] == [k for k, *_ in ref.kv]
    for (key, raw, vtype, _), (_, ref_raw, ref_vtype, _) in zip(native.kv, ref.kv, strict=True):
        assert (key, vtype) == (key, ref_vtype)
        assert raw == ref_raw, f"{key} differs"
    ours = {t.name: t for t in native.tensors}
    assert sorted(ours) == sorted(t.name for t in ref.tensors)
    for t in ref.tensors:
        mine = ours[t.name]
        assert (mine.shape, mine.ggml_type, mine.nbytes) == (t.shape, t.ggml_type, t.nbytes), t.name
        if t.small_offset >= 0:
            assert mine.data == ref.small_bytes(t), t.name



def _staged(src: Path, tmp_path: Path) -> Path:
    return stage_model_dir(src, None, None, tmp_path / "staged" / src.name)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2", "llama"])
def test_native_metadata_equals_converter_for_tiny_models(family: str, request: pytest.FixtureRequest,
                                                           tmp_path: Path) -> None:
    staged = _staged(request.getfixturevalue(f"tiny_{family}"), tmp_path)
    _assert_same(native_metadata(staged), _converter(staged, tmp_path / "ref"))


@pytest.mark.slow
def test_native_metadata_equals_converter_for_deepseek_r1_distill_style(deepseek_r1_style: Path,
                                                                        tmp_path: Path) -> None:
    staged = _staged(deepseek_r1_style, tmp_path)
    native = native_metadata(staged, model_name=None)
    _assert_same(native, _converter(staged, tmp_path / "ref"))
    values = {k: plain for k, _, _, plain in native.kv}
    assert values["tokenizer.ggml.pre"] == "deepseek-r1-qwen"  # the real model's fingerprint, not a patched one
    assert values["tokenizer.ggml.bos_token_id"] == 151646
    assert values["tokenizer.ggml.add_bos_token"] is True
    assert values["general.sampling.temp"] == 0.6
    assert values["tokenizer.chat_template"] == R1_TEMPLATE


@pytest.mark.slow
def test_native_metadata_equals_converter_for_llama3_style(llama3_style: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    staged = _staged(llama3_style, tmp_path)
    fingerprint = _fingerprint(staged)
    assert fingerprint not in tokenizer_meta.PRE_TOKENIZERS  # Qwen2 ranks: not the real Llama 3 fingerprint
    monkeypatch.setitem(tokenizer_meta.PRE_TOKENIZERS, fingerprint, "llama-bpe")
    native = native_metadata(staged, model_name="my-llama")
    _assert_same(native, _converter(staged, tmp_path / "ref", pre="llama-bpe", model_name="my-llama"))
    values = {k: plain for k, _, _, plain in native.kv}
    assert values["general.name"] == "my-llama"
    assert (values["tokenizer.ggml.add_bos_token"], values["tokenizer.ggml.add_sep_token"]) == (True, False)
    assert values["llama.attention.key_length"] == 64  # head_dim derived as transformers' LlamaConfig does
    assert [t.shape for t in native.tensors if t.name == "rope_freqs.weight"] == [(32,)]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["json", "spm"])
def test_native_metadata_equals_converter_for_gemma3(kind: str, gemma3_dirs: dict[str, Path],
                                                     tmp_path: Path) -> None:
    staged = _staged(gemma3_dirs[kind], tmp_path)
    native = native_metadata(staged)
    _assert_same(native, _converter(staged, tmp_path / "ref"))
    values = {k: plain for k, _, _, plain in native.kv}
    assert values["tokenizer.ggml.model"] == ("llama" if kind == "spm" else "gpt2")


def _fingerprint(model_dir: Path) -> str:
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(model_dir).encode(tokenizer_meta.CHECK_TEXT)
    return sha256(str(ids).encode()).hexdigest()


def test_unknown_fingerprint_is_left_to_the_converter(tiny_qwen2: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenizer_meta, "PRE_TOKENIZERS", {})
    reason = write_native_skeleton(_staged(tiny_qwen2, tmp_path), tmp_path / "work", None)
    assert reason is not None and reason.startswith("BPE pre-tokenizer fingerprint e636dc30a262")
    assert not (tmp_path / "work" / "meta.json").exists()


def test_model_card_front_matter_is_left_to_the_converter(tiny_qwen2: Path, tmp_path: Path) -> None:
    staged = _staged(tiny_qwen2, tmp_path)
    (staged / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny\n", encoding="utf-8")
    assert write_native_skeleton(staged, tmp_path / "work", None) == \
        "the model card has front matter (the converter reads it)"


@pytest.mark.slow
def test_single_pass_builds_with_native_metadata_as_with_the_converter(tiny_qwen2: Path, tiny_qwen2_adapter: Path,
                                                                       tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from lorag.build.fast import build_gguf_single_pass

    monkeypatch.setenv("LORAG_FAST_CACHE", "0")
    native = build_gguf_single_pass(tiny_qwen2, tiny_qwen2_adapter, tmp_path / "a.gguf", "Q8_0", None, device="cpu")
    monkeypatch.setattr(tokenizer_meta, "PRE_TOKENIZERS", {})  # the native path declines: the converter runs
    converter = build_gguf_single_pass(tiny_qwen2, tiny_qwen2_adapter, tmp_path / "b.gguf", "Q8_0", None,
                                       device="cpu")
    assert (native["metadata_source"], converter["metadata_source"]) == ("native", "converter")
    assert native["metadata_fallback"] is None
    assert converter["metadata_fallback"].startswith("BPE pre-tokenizer fingerprint e636dc30a262")
    assert (tmp_path / "a.gguf").read_bytes() == (tmp_path / "b.gguf").read_bytes()
