"""A byte-level BPE tokenizer loaded as transformers 5's AutoTokenizer would load it, without transformers.

The converter reads the vocabulary through ``AutoTokenizer.from_pretrained``; importing transformers and
letting it parse tokenizer.json three times costs 5-12 s on a first build. For the cases where transformers
loads tokenizer.json unchanged (its generic backend, a LlamaTokenizer class over a byte-level file, and
Qwen2Tokenizer, whose rebuilt pipeline is checked to be the file's own) the ``tokenizers`` library gives the
same vocabulary, added tokens and token ids directly. Whatever this module cannot vouch for raises
NotMirrored, and the caller loads the tokenizer through transformers instead.
"""

from __future__ import annotations

from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Protocol

from lorag.build.fast.general_meta import json_object

# transformers' Qwen2Tokenizer pipeline (models/qwen2/tokenization_qwen2.py in transformers 5)
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_NAMED = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_LISTS = ("additional_special_tokens", "extra_special_tokens")
_FLAGS = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")


class NotMirrored(Exception):
    """This tokenizer's loading is not one this module reproduces: load it through transformers."""


class BpeTokenizer(Protocol):
    """What the vocabulary keys need from a loaded tokenizer (transformers' names)."""

    vocab: dict[str, int]

    def get_added_vocab(self) -> dict[str, int]: ...

    @property
    def added_tokens_decoder(self) -> dict[int, Any]: ...

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class NativeBpe:
    """A tokenizers.Tokenizer behind transformers' method names."""

    def __init__(self, backend: Any) -> None:
        self._tok = backend
        self.vocab: dict[str, int] = backend.get_vocab(with_added_tokens=True)
        self._decoder: dict[int, Any] = backend.get_added_tokens_decoder()

    def get_added_vocab(self) -> dict[str, int]:
        return {t.content: i for i, t in sorted(self._decoder.items())}

    @property
    def added_tokens_decoder(self) -> dict[int, Any]:
        return self._decoder

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: list[int]) -> str:
        return str(self._tok.decode(ids, skip_special_tokens=False))


def load_native_bpe(model_dir: Path, tokenizer_json: dict[str, Any]) -> NativeBpe:
    """The tokenizer transformers 5 would build for ``model_dir``; NotMirrored when that is not certain."""
    tcfg = json_object(model_dir / "tokenizer_config.json")
    mode = loading_mode(model_dir, tcfg, tokenizer_json)
    _check_backend_settings(tcfg, tokenizer_json)
    named = _named_tokens(model_dir, tcfg, mode)
    missing = _check_added_tokens(tcfg, tokenizer_json, named)
    from tokenizers import AddedToken, Tokenizer

    try:
        backend = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    except Exception as exc:  # the Rust side raises plain Exceptions for files it cannot parse
        raise NotMirrored(f"the tokenizers library cannot load tokenizer.json: {exc}") from exc
    if missing:  # TokenizersBackend adds named special tokens the file lacks, in this order, at the next ids
        backend.add_tokens([AddedToken(t, special=True) for t in missing])
    if mode == "qwen2":
        _check_qwen2_flags(backend, named, tcfg)
    _set_post_processor(backend, tcfg, named)
    return NativeBpe(backend)


def loading_mode(model_dir: Path, tcfg: dict[str, Any], tokenizer_json: dict[str, Any]) -> str:
    """"file" (tokenizer.json as it is) or "qwen2" (Qwen2Tokenizer's rebuild); NotMirrored otherwise.

    Follows AutoTokenizer's class choice in transformers 5 for the model types the native metadata handles.
    """
    declared = declared_class(model_dir, tcfg)
    if declared in ("PreTrainedTokenizer", "TokenizersBackend"):
        return "file"
    # Qwen2Tokenizer, and (as AutoTokenizer resolves it for a qwen2 model) a declared LlamaTokenizer too
    if not _is_qwen2_pipeline(tokenizer_json, bool(tcfg.get("add_prefix_space") or False)):
        raise NotMirrored("tokenizer.json's pipeline is not the one Qwen2Tokenizer rebuilds")
    return "qwen2"


def declared_class(model_dir: Path, tcfg: dict[str, Any]) -> str:
    """The tokenizer class (without "Fast"), when it and the model type are ones this module may mirror."""
    version = _transformers_version()
    if not version.startswith("5."):
        raise NotMirrored(f"transformers {version or 'missing'}")
    if "auto_map" in tcfg:
        raise NotMirrored("the tokenizer has custom code")
    declared = str(tcfg.get("tokenizer_class") or "").removesuffix("Fast")
    model_type = str(json_object(model_dir / "config.json").get("model_type") or "")
    generic = declared in ("PreTrainedTokenizer", "TokenizersBackend") and model_type in ("llama", "qwen2")
    if not (generic or (declared in ("Qwen2Tokenizer", "LlamaTokenizer") and model_type == "qwen2")):
        raise NotMirrored(f"tokenizer class {declared or 'unset'} for model type {model_type or 'unset'}")
    return declared


def _transformers_version() -> str:
    try:
        return importlib_metadata.version("transformers")
    except importlib_metadata.PackageNotFoundError:
        return ""


def _is_qwen2_pipeline(tj: dict[str, Any], add_prefix_space: bool) -> bool:
    """tokenizer.json normalises, splits, decodes and merges exactly as Qwen2Tokenizer's own pipeline."""
    model = tj.get("model") or {}
    pre = tj.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers") or []
    if pre.get("type") != "Sequence" or len(steps) != 2:
        return False
    split, level = steps
    return (
        tj.get("normalizer") == {"type": "NFC"}
        and (tj.get("decoder") or {}).get("type") == "ByteLevel"
        and split.get("type") == "Split" and split.get("pattern") == {"Regex": QWEN2_PATTERN}
        and split.get("behavior") == "Isolated" and not split.get("invert")
        and level.get("type") == "ByteLevel" and bool(level.get("add_prefix_space")) == add_prefix_space
        and level.get("use_regex") is False
        and model.get("type") == "BPE" and model.get("dropout") is None and model.get("unk_token") is None
        and not model.get("continuing_subword_prefix") and not model.get("end_of_word_suffix")
        and not model.get("fuse_unk") and not model.get("byte_fallback") and not model.get("ignore_merges")
    )


def _check_backend_settings(tcfg: dict[str, Any], tj: dict[str, Any]) -> None:
    if tj.get("truncation") is not None or tj.get("padding") is not None:
        raise NotMirrored("tokenizer.json sets truncation or padding")
    if tcfg.get("split_special_tokens"):
        raise NotMirrored("split_special_tokens")


def _content(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _named_tokens(model_dir: Path, tcfg: dict[str, Any], mode: str) -> dict[str, str | None]:
    """bos/eos/unk/... as the tokenizer will hold them: tokenizer_config over special_tokens_map, then the
    class's defaults (Qwen2Tokenizer: unk, eos and pad "<|endoftext|>")."""
    stmap = json_object(model_dir / "special_tokens_map.json")
    named: dict[str, str | None] = {}
    for key in _NAMED:
        if key in tcfg:
            named[key] = _content(tcfg[key])
        elif key in stmap:
            named[key] = _content(stmap[key])
        elif mode == "qwen2" and key in ("unk_token", "eos_token", "pad_token"):
            named[key] = "<|endoftext|>"
    return named


def _wanted(named: dict[str, str | None], tcfg: dict[str, Any]) -> list[str]:
    """The special tokens transformers makes sure exist: named ones in attribute order, then the lists."""
    wanted = [v for v in named.values() if v]
    for key in _LISTS:
        wanted += [c for c in (_content(v) for v in tcfg.get(key) or []) if c]
    return list(dict.fromkeys(wanted))


def _check_added_tokens(tcfg: dict[str, Any], tj: dict[str, Any], named: dict[str, str | None]) -> list[str]:
    """Special tokens transformers would add on load (returned); NotMirrored where it would re-flag or place
    tokens in ways this module does not reproduce."""
    in_file = {int(t["id"]): t for t in tj.get("added_tokens") or []}
    for key, entry in (tcfg.get("added_tokens_decoder") or {}).items():
        mine = in_file.get(int(key))
        if not isinstance(entry, dict) or mine is None or any(entry.get(f, False) != mine.get(f, False)
                                                              for f in _FLAGS):
            raise NotMirrored(f"added token {key} differs between tokenizer_config.json and tokenizer.json")
    added = {t["content"] for t in in_file.values()}  # a token of the base vocabulary is still (re)added
    return [t for t in _wanted(named, tcfg) if t not in added]


def _check_qwen2_flags(backend: Any, named: dict[str, str | None], tcfg: dict[str, Any]) -> None:
    """Qwen2Tokenizer re-adds every special token as AddedToken(special=True): fine where it already is one."""
    by_content = {t.content: t for t in backend.get_added_tokens_decoder().values()}
    for token in _wanted(named, tcfg):
        entry = by_content.get(token)
        if entry is None or not entry.special or entry.normalized or entry.lstrip or entry.rstrip \
                or entry.single_word:
            raise NotMirrored(f"special token {token!r} would be re-flagged by Qwen2Tokenizer")


def _set_post_processor(backend: Any, tcfg: dict[str, Any], named: dict[str, str | None]) -> None:
    """TokenizersBackend keeps the file's post-processor unless add_bos_token/add_eos_token are configured
    (or the file has none): then it is a template of just those tokens."""
    if "add_bos_token" not in tcfg and "add_eos_token" not in tcfg and backend.post_processor is not None:
        return
    from tokenizers.processors import TemplateProcessing

    bos, eos = named.get("bos_token"), named.get("eos_token")
    add_bos = bool(tcfg.get("add_bos_token", False)) and bos is not None
    add_eos = bool(tcfg.get("add_eos_token", False)) and eos is not None
    single = f"{f'{bos}:0 ' if add_bos else ''}$A:0{f' {eos}:0' if add_eos else ''}"
    pair = f"{single}{f' {bos}:1' if add_bos else ''} $B:1{f' {eos}:1' if add_eos else ''}"
    specials = []
    for flag, token in ((add_bos, bos), (add_eos, eos)):
        if flag and token is not None:
            tid = backend.token_to_id(token)
            if tid is None:
                raise NotMirrored(f"{token!r} has no id")
            specials.append((token, tid))
    backend.post_processor = TemplateProcessing(single=single, pair=pair, special_tokens=specials)

