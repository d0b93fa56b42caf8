"""The tokenizer keys llama.cpp's converter writes, derived in-process from the model's tokenizer files.

Two vocabularies: byte-level BPE from tokenizer.json (Qwen2, DeepSeek-R1-Distill, Llama 3: model "gpt2",
loaded as the converter's transformers loads it, its pre-tokenizer recognised by the same fingerprint)
and SentencePiece from tokenizer.model (Gemma: model "llama"). Anything else raises NativeUnsupported.
"""

from __future__ import annotations

import logging
from hashlib import sha256
from pathlib import Path
from typing import Any

from lorag.build.fast.bpe_native import BpeTokenizer, NotMirrored, load_native_bpe
from lorag.build.fast.general_meta import NativeUnsupported, json_object
from lorag.build.fast.gguf_values import FLOAT32, INT32, STRING, KvList
from lorag.build.fast.special_vocab import SpecialVocab

log = logging.getLogger(__name__)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# The text llama.cpp encodes to fingerprint a BPE pre-tokenizer (convert_hf_to_gguf_update.py).
CHECK_TEXT = (
    '\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated)'
    ' ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁'
    ' ?我想在apple工作1314151天～ ------======= нещо на Български \'\'\'\'\'\'```````""""......!!!'
    "!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D"
    " you like some tea? We'Ve a'lL"
)
# sha256(str(token ids of CHECK_TEXT)) → tokenizer.ggml.pre, for the tokenizers of the families built natively
# (values from llama.cpp 0.3.36's get_vocab_base_pre). An unknown fingerprint goes to the converter.
PRE_TOKENIZERS: dict[str, str] = {
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",  # Qwen1.5 / Qwen2 / Qwen2.5
    "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",  # Qwen3
    "b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5": "deepseek-r1-qwen",
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",  # Llama 3 / 3.1 / 3.2
    "c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d": "smaug-bpe",
    # Gemma's vocabulary as tokenizer.json only (no tokenizer.model) collides with this entry in the table
    "789696f5946cc0fc59371f39f6097cafed196b3acded6140432f26bbb1ae1669": "granite-embed-multi-311m",
}


def looks_special(token: str) -> bool:
    """The converter's does_token_look_special: added tokens that should be CONTROL even if not marked."""
    return (token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
            or (token.startswith("<|") and token.endswith("|>"))
            or (token.startswith("<｜") and token.endswith("｜>"))
            or (token.startswith("<unused") and token.endswith(">")))


def load_tokenizer_json(model_dir: Path) -> dict[str, Any] | None:
    """tokenizer.json parsed, or None when the directory has none (NativeUnsupported when it is unreadable)."""
    path = model_dir / "tokenizer.json"
    return json_object(path) if path.is_file() else None


def pre_tokenizer(tokenizer: BpeTokenizer) -> str:
    """tokenizer.ggml.pre for a loaded tokenizer, from the converter's fingerprint table."""
    digest = sha256(str(tokenizer.encode(CHECK_TEXT)).encode()).hexdigest()
    if digest not in PRE_TOKENIZERS:
        raise NativeUnsupported(f"BPE pre-tokenizer fingerprint {digest[:12]} is not one of the known families")
    return PRE_TOKENIZERS[digest]


def _bpe_tokens(tokenizer: BpeTokenizer, vocab_size: int) -> tuple[list[str], list[int]]:
    vocab: dict[str, int] = tokenizer.vocab
    reverse = {i: t for t, i in vocab.items()}
    added = tokenizer.get_added_vocab()
    decoder = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        token = reverse.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
            continue
        kind = NORMAL
        if token in added:
            # llama.cpp expects CONTROL / USER_DEFINED tokens pre-normalised, as the converter makes them
            if not decoder[i].normalized:
                token = tokenizer.decode(tokenizer.encode(token, add_special_tokens=False))
            if decoder[i].special or looks_special(token):
                kind = CONTROL
            else:
                token = token.replace("\u2581", " ")
                kind = USER_DEFINED
        tokens.append(token)
        types.append(kind)
    return tokens, types


def add_bpe_vocab(kv: KvList, model_dir: Path, hparams: dict[str, Any], tokenizer_json: dict[str, Any]) -> None:
    """The converter's _set_vocab_gpt2: model, pre, tokens, token types, then the special vocabulary.

    The tokenizer is loaded as the converter loads it (transformers' AutoTokenizer): directly through the
    tokenizers library where bpe_native vouches for the result, else through transformers itself (the class
    it picks for the model type can rebuild the pipeline or add tokens tokenizer.json does not have).
    """
    tokenizer = load_bpe(model_dir, tokenizer_json)
    vocab_size = int(hparams.get("vocab_size", len(tokenizer.vocab)))
    if max(tokenizer.vocab.values()) >= vocab_size:
        raise NativeUnsupported("the tokenizer has ids past the model's vocab_size")
    pre = pre_tokenizer(tokenizer)
    tokens, types = _bpe_tokens(tokenizer, vocab_size)
    kv.string("tokenizer.ggml.model", "gpt2")
    kv.string("tokenizer.ggml.pre", pre)
    kv.array("tokenizer.ggml.tokens", tokens, STRING)
    kv.array("tokenizer.ggml.token_type", types, INT32)
    SpecialVocab(model_dir, tokenizer_json, load_merges=True).add_to(kv)


def load_bpe(model_dir: Path, tokenizer_json: dict[str, Any]) -> BpeTokenizer:
    """The BPE tokenizer as AutoTokenizer would load it: natively when that is certain, else via transformers."""
    try:
        return load_native_bpe(model_dir, tokenizer_json)
    except NotMirrored as exc:
        log.debug("tokenizer loaded through transformers: %s", exc)
    return transformers_bpe(model_dir)


def transformers_bpe(model_dir: Path) -> BpeTokenizer:
    """``AutoTokenizer.from_pretrained(model_dir)``, quietly; NativeUnsupported when transformers cannot."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its notes about the tokenizer class are not the user's business
    try:
        tokenizer: Any = AutoTokenizer.from_pretrained(model_dir)
    except Exception as exc:
        raise NativeUnsupported(f"transformers cannot load the tokenizer: {exc}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    loaded: BpeTokenizer = tokenizer
    return loaded


def spm_vocab(model_dir: Path, hparams: dict[str, Any]) -> tuple[list[bytes], list[float], list[int]]:
    """The converter's _create_vocab_sentencepiece: tokens, scores and types from tokenizer.model."""
    from sentencepiece import SentencePieceProcessor

    sp = SentencePieceProcessor()
    sp.LoadFromFile(str(model_dir / "tokenizer.model"))
    n = hparams.get("vocab_size_per_layer_input") or hparams.get("vocab_size") or sp.vocab_size()
    tokens = [f"[PAD{i}]".encode() for i in range(n)]
    scores = [-10000.0] * n
    types = [UNUSED] * n
    for i in range(min(n, sp.vocab_size())):
        kind = NORMAL
        if sp.IsUnknown(i):
            kind = UNKNOWN
        elif sp.IsControl(i):
            kind = CONTROL
        elif sp.IsUnused(i):
            kind = UNUSED
        elif sp.IsByte(i):
            kind = BYTE
        tokens[i], scores[i], types[i] = sp.IdToPiece(i).encode("utf-8"), sp.GetScore(i), kind
    for text, i in json_object(model_dir / "added_tokens.json").items():
        if i < n:
            tokens[i], scores[i], types[i] = text.encode("utf-8"), -1000.0, USER_DEFINED
    decoder = json_object(model_dir / "tokenizer_config.json").get("added_tokens_decoder", {})
    for key, data in decoder.items():
        i, text = int(key), data["content"]
        if i >= n:
            continue
        if data.get("special") or looks_special(text):
            types[i] = CONTROL
        else:
            text = text.replace("\u2581", " ")
            types[i] = USER_DEFINED
        scores[i], tokens[i] = -1000.0, text.encode("utf-8")
    return tokens, scores, types


def add_spm_vocab(kv: KvList, model_dir: Path, hparams: dict[str, Any], tokenizer: dict[str, Any] | None) -> None:
    """The converter's _set_vocab_sentencepiece: model "llama", pre "default", tokens, scores, types, specials."""
    tokens, scores, types = spm_vocab(model_dir, hparams)
    kv.string("tokenizer.ggml.model", "llama")
    kv.string("tokenizer.ggml.pre", "default")
    kv.array("tokenizer.ggml.tokens", tokens, STRING)
    kv.array("tokenizer.ggml.scores", scores, FLOAT32)
    kv.array("tokenizer.ggml.token_type", types, INT32)
    SpecialVocab(model_dir, tokenizer, load_merges=False, n_vocab=len(tokens)).add_to(kv)

