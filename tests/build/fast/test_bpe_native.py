"""The tokenizers-only BPE loader against transformers' AutoTokenizer: same vocabulary, flags, ids, GGUF tokens."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lorag.build.fast import bpe_native, tokenizer_meta
from lorag.build.fast.bpe_native import NotMirrored, load_native_bpe
from lorag.build.fast.metadata import native_metadata
from tests.build.fast.test_native_metadata import _assert_same, _converter, _staged
from tests.helpers.model_dirs import edit_json as _edit_json


def _tokenizer_json(model_dir: Path) -> dict[str, Any]:
    data = tokenizer_meta.load_tokenizer_json(model_dir)
    assert data is not None
    return data


def _assert_loads_like_transformers(model_dir: Path, vocab_size: int) -> None:
    native = load_native_bpe(model_dir, _tokenizer_json(model_dir))
    ref = tokenizer_meta.transformers_bpe(model_dir)
    assert native.vocab == ref.vocab
    assert native.get_added_vocab() == ref.get_added_vocab()
    flags = {i: (t.content, t.special, t.normalized) for i, t in native.added_tokens_decoder.items()}
    assert flags == {i: (t.content, t.special, t.normalized) for i, t in ref.added_tokens_decoder.items()}
    assert native.encode(tokenizer_meta.CHECK_TEXT) == ref.encode(tokenizer_meta.CHECK_TEXT)
    assert tokenizer_meta._bpe_tokens(native, vocab_size) == tokenizer_meta._bpe_tokens(ref, vocab_size)


def _merges_not_ignored(root: Path) -> None:
    """As the Qwen2.5 and DeepSeek-R1-Distill files have it (and Qwen2Tokenizer's rebuild)."""
    tj = json.loads((root / "tokenizer.json").read_text(encoding="utf-8"))
    tj["model"]["ignore_merges"] = False
    (root / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")


@pytest.fixture(scope="module")
def qwen25_style(tiny_qwen2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen2.5's layout: tokenizer_class Qwen2Tokenizer (transformers rebuilds the pipeline from the vocabulary
    and merges), unk_token null."""
    root = tmp_path_factory.mktemp("q25") / "Qwen2.5-7B-Instruct"
    shutil.copytree(tiny_qwen2, root, symlinks=True)
    _edit_json(root / "tokenizer_config.json", tokenizer_class="Qwen2Tokenizer", add_prefix_space=False)
    _merges_not_ignored(root)
    return root


@pytest.fixture(scope="module")
def r1_native(deepseek_r1_style: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DeepSeek-R1-Distill-Qwen's layout with its merges not ignored: AutoTokenizer picks Qwen2Tokenizer, which
    names "<|endoftext|>" as the unknown token; the file lacks it, so it is added at the next id."""
    root = tmp_path_factory.mktemp("r1n") / deepseek_r1_style.name
    shutil.copytree(deepseek_r1_style, root, symlinks=True)
    _merges_not_ignored(root)
    return root


@pytest.mark.slow
def test_generic_backend_loads_like_transformers(tiny_qwen2: Path) -> None:
    assert bpe_native.loading_mode(tiny_qwen2, {"tokenizer_class": "TokenizersBackend"},
                                   _tokenizer_json(tiny_qwen2)) == "file"
    _assert_loads_like_transformers(tiny_qwen2, 151646)


@pytest.mark.slow
def test_llama_class_on_a_qwen2_model_loads_like_transformers(r1_native: Path) -> None:
    _assert_loads_like_transformers(r1_native, 152064)
    native = load_native_bpe(r1_native, _tokenizer_json(r1_native))
    assert native.encode("x")[0] == 151646  # add_bos_token: BOS first, as transformers' template puts it
    assert native.vocab["<|endoftext|>"] == 151650


@pytest.mark.slow
def test_r1_layout_metadata_equals_converter(r1_native: Path, tmp_path: Path) -> None:
    staged = _staged(r1_native, tmp_path)
    _assert_same(native_metadata(staged), _converter(staged, tmp_path / "ref"))


@pytest.mark.slow
def test_ignored_merges_under_qwen2_class_go_through_transformers(deepseek_r1_style: Path) -> None:
    with pytest.raises(NotMirrored, match="not the one Qwen2Tokenizer rebuilds"):
        load_native_bpe(deepseek_r1_style, _tokenizer_json(deepseek_r1_style))


@pytest.mark.slow
def test_llama3_style_loads_like_transformers(llama3_style: Path) -> None:
    _assert_loads_like_transformers(llama3_style, 151680)


@pytest.mark.slow
def test_qwen2_tokenizer_class_loads_like_transformers(qwen25_style: Path) -> None:
    tj = _tokenizer_json(qwen25_style)
    tcfg = json.loads((qwen25_style / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert bpe_native.loading_mode(qwen25_style, tcfg, tj) == "qwen2"
    _assert_loads_like_transformers(qwen25_style, 151646)


@pytest.mark.slow
def test_qwen2_tokenizer_class_metadata_equals_converter(qwen25_style: Path, tmp_path: Path) -> None:
    staged = _staged(qwen25_style, tmp_path)
    _assert_same(native_metadata(staged), _converter(staged, tmp_path / "ref"))


def test_gemma_class_is_left_to_transformers(gemma3_dirs: dict[str, Path]) -> None:
    d = gemma3_dirs["json"]
    with pytest.raises(NotMirrored, match="tokenizer class GemmaTokenizer"):
        load_native_bpe(d, _tokenizer_json(d))


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_declines_what_transformers_would_change(tiny_qwen2: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    d = _copy(tiny_qwen2, tmp_path)
    tj = _tokenizer_json(d)
    cfg = d / "tokenizer_config.json"
    original = cfg.read_text(encoding="utf-8")

    def declined(match: str, **changes: Any) -> None:
        cfg.write_text(original, encoding="utf-8")
        _edit_json(cfg, **changes)
        with pytest.raises(NotMirrored, match=match):
            load_native_bpe(d, tj)

    im_end = next(t for t in tj["added_tokens"] if t["content"] == "<|im_end|>")
    declined(f"added token {im_end['id']} differs", added_tokens_decoder={
        str(im_end["id"]): {**im_end, "normalized": not im_end["normalized"]}})
    declined("custom code", auto_map={"AutoTokenizer": ["x.Tok", None]})
    declined("tokenizer class GPT2Tokenizer for model type qwen2", tokenizer_class="GPT2TokenizerFast")
    declined("split_special_tokens", split_special_tokens=True)
    cfg.write_text(original, encoding="utf-8")
    monkeypatch.setattr(bpe_native, "_transformers_version", lambda: "4.57.1")
    with pytest.raises(NotMirrored, match=r"transformers 4\.57\.1"):
        load_native_bpe(d, tj)


@pytest.mark.slow
def test_special_tokens_the_file_lacks_are_added_as_transformers_adds_them(tiny_qwen2: Path, tmp_path: Path) -> None:
    d = _copy(tiny_qwen2, tmp_path)
    _edit_json(d / "tokenizer_config.json", bos_token="<s>", additional_special_tokens=["<extra>", "<s>"])
    _assert_loads_like_transformers(d, 151700)
    native = load_native_bpe(d, _tokenizer_json(d))
    assert (native.vocab["<s>"], native.vocab["<extra>"]) == (128245, 151646)  # "<s>" is a base token


def test_qwen2_class_declines_a_different_pipeline(tiny_qwen2: Path, tmp_path: Path) -> None:
    d = _copy(tiny_qwen2, tmp_path)
    _edit_json(d / "tokenizer_config.json", tokenizer_class="Qwen2Tokenizer")
    tj = _tokenizer_json(d)  # ignore_merges is true in this file: Qwen2Tokenizer's rebuild would not ignore them
    with pytest.raises(NotMirrored, match="not the one Qwen2Tokenizer rebuilds"):
        load_native_bpe(d, tj)


def test_declined_tokenizer_still_gives_the_vocabulary_through_transformers(tiny_qwen2: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    d = _copy(tiny_qwen2, tmp_path)
    monkeypatch.setattr(bpe_native, "_transformers_version", lambda: "4.57.1")
    tokenizer = tokenizer_meta.load_bpe(d, _tokenizer_json(d))
    assert type(tokenizer).__module__.startswith("transformers")
    assert tokenizer_meta.pre_tokenizer(tokenizer) == "qwen2"


def test_files_the_native_path_cannot_read_leave_it_to_the_converter(tiny_qwen2: Path, tmp_path: Path) -> None:
    from lorag.build.fast.metadata import write_native_skeleton

    d = _copy(tiny_qwen2, tmp_path)
    good = (d / "tokenizer_config.json").read_text(encoding="utf-8")
    (d / "tokenizer_config.json").write_text(good[: len(good) // 2], encoding="utf-8")  # cut short
    reason = write_native_skeleton(d, tmp_path / "work", None)
    assert reason is not None and reason.startswith("cannot read tokenizer_config.json")
    assert not (tmp_path / "work" / "meta.json").exists()
    (d / "tokenizer_config.json").write_text(good, encoding="utf-8")
    tj = _tokenizer_json(d)
    broken = {**tj, "model": {**tj["model"], "vocab": 5}}
    (d / "tokenizer.json").write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(NotMirrored, match=r"the tokenizers library cannot load tokenizer\.json"):
        load_native_bpe(d, broken)
