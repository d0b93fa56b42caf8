"""Special token ids, add-BOS/EOS/SEP flags, merges, chat template and normaliser flags, as gguf-py's
SpecialVocab reads them from tokenizer.json, tokenizer_config.json, chat_template.* and config.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lorag.build.fast.general_meta import NativeUnsupported
from lorag.build.fast.gguf_values import BOOL, STRING, UINT32, KvList

_TYPES = ("bos", "eos", "unk", "sep", "pad", "cls", "mask")
_ID_KEYS = {"bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id", "sep": "seperator_token_id",
            "pad": "padding_token_id", "mask": "mask_token_id", "eot": "eot_token_id", "eom": "eom_token_id"}
_ADD_KEYS = {"bos": "add_bos_token", "eos": "add_eos_token", "sep": "add_sep_token"}


class SpecialVocab:
    """What the converter's SpecialVocab collects for one model directory."""

    def __init__(self, model_dir: Path, tokenizer_json: dict[str, Any] | None, load_merges: bool,
                 n_vocab: int | None = None) -> None:
        self.n_vocab, self.load_merges = n_vocab, load_merges
        self.types: tuple[str, ...] = _TYPES
        self.ids: dict[str, int] = {}
        self.add: dict[str, bool] = {}
        self.merges: list[str] = []
        self.chat_template: str | None = None
        self.lowercase: bool | None = None
        self.strip_accents: bool | None = None
        self._from_tokenizer_files(model_dir, tokenizer_json)
        self._from_config(model_dir)
        if load_merges and not self.merges:
            raise NativeUnsupported("no merges in tokenizer.json")

    def add_to(self, kv: KvList) -> None:
        """Append the pairs in the converter's order."""
        if self.merges:
            kv.array("tokenizer.ggml.merges", self.merges, STRING)
        for typ, tid in self.ids.items():
            if typ not in _ID_KEYS:  # gguf-py has no writer for a CLS id: it skips it
                continue
            kv.set(f"tokenizer.ggml.{_ID_KEYS[typ]}", UINT32, tid)
        for typ, flag in self.add.items():
            if typ not in _ADD_KEYS:
                raise NativeUnsupported(f"add_{typ}_token")  # the converter warns and skips; rare
            kv.set(f"tokenizer.ggml.{_ADD_KEYS[typ]}", BOOL, flag)
        if self.chat_template is not None:
            kv.string("tokenizer.chat_template", self.chat_template)
        if self.lowercase is not None:
            kv.boolean("tokenizer.ggml.normalizer.lowercase", self.lowercase)
        if self.strip_accents is not None:
            kv.boolean("tokenizer.ggml.normalizer.strip_accents", self.strip_accents)

    def _set(self, typ: str, tid: Any) -> None:
        if not isinstance(tid, int):
            return
        if tid < 0:
            raise NativeUnsupported(f"negative {typ} token id")
        if (self.n_vocab is None or tid < self.n_vocab) and typ not in self.ids:
            self.ids[typ] = tid

    def _normalizer(self, norm: dict[str, Any]) -> None:
        kind = norm.get("type")
        if kind == "Lowercase":
            self.lowercase = True
        elif kind == "StripAccents":
            self.strip_accents = True
        elif kind == "BertNormalizer":
            if "lowercase" in norm:
                self.lowercase = norm["lowercase"]
            if "strip_accents" in norm:
                self.strip_accents = norm["strip_accents"]
        elif kind == "Sequence":
            for inner in norm.get("normalizers", []):
                self._normalizer(inner)

    def _merges(self, tokenizer: dict[str, Any]) -> None:
        merges = tokenizer.get("model", {}).get("merges")
        if not isinstance(merges, list) or not merges:
            return
        if isinstance(merges[0], str):
            self.merges = merges
        elif isinstance(merges[0], list) and len(merges[0]) == 2 and isinstance(merges[0][0], str):
            # pairs (transformers >= 4.45): a space inside a part is written as chr(ord(" ") + 256)
            self.merges = [f"{a} {b}" for a, b in merges]
            if any(" " in a or " " in b for a, b in merges):
                self.merges = [f"{a.replace(' ', chr(288))} {b.replace(' ', chr(288))}" for a, b in merges]
        else:
            raise NativeUnsupported("unknown merges format")

    def _from_tokenizer_files(self, model_dir: Path, tokenizer: dict[str, Any] | None) -> None:
        added: list[dict[str, Any]] = []
        if tokenizer is not None:
            if self.load_merges:
                self._merges(tokenizer)
            if normalizer := tokenizer.get("normalizer"):
                self._normalizer(normalizer)
            added = tokenizer.get("added_tokens", [])
        config = _json_or_none(model_dir / "tokenizer_config.json")
        if tokenizer:
            self._post_processor(tokenizer, config)
        if not config:
            return
        self._chat_template(model_dir, config)
        for typ in self.types:
            entry = config.get(f"add_{typ}_token")
            if isinstance(entry, bool) and typ not in self.add:
                self.add[typ] = entry
            content = config.get(f"{typ}_token")
            if isinstance(content, dict):
                content = content.get("content")
            if not isinstance(content, str):
                continue
            self._set(typ, next((tok.get("id") for tok in added if tok.get("content") == content), None))

    def _chat_template(self, model_dir: Path, config: dict[str, Any]) -> None:
        alt: Any = None
        jinja, as_json = model_dir / "chat_template.jinja", model_dir / "chat_template.json"
        if jinja.is_file():
            alt = jinja.read_text(encoding="utf-8")
            if list((model_dir / "additional_chat_templates").glob("*.jinja")):
                raise NativeUnsupported("additional chat templates")
        elif as_json.is_file():
            alt = json.loads(as_json.read_text(encoding="utf-8")).get("chat_template")
        template = config.get("chat_template", alt)
        if template is None or isinstance(template, str):
            self.chat_template = template
        elif isinstance(template, list):
            raise NativeUnsupported("named chat templates")

    def _post_processor(self, tokenizer: dict[str, Any], config: dict[str, Any] | None) -> None:
        processor = tokenizer.get("post_processor")
        if not processor:
            return
        cfg = config or {}
        bos, cls, eos, sep = cfg.get("bos_token"), cfg.get("cls_token"), cfg.get("eos_token"), cfg.get("sep_token")
        if not bos and cls and config:
            config["bos_token"] = bos = cls
        if not eos and sep and config:
            config["eos_token"] = eos = sep
        for proc in processor.get("processors", [processor]):
            kind = proc.get("type")
            if kind == "ByteLevel":
                self.add.setdefault("bos", False)
                self.add.setdefault("eos", False)
            elif kind == "TemplateProcessing":
                self._template(proc, config, bos, cls, eos, sep)
            elif kind is not None and kind != "Sequence":
                raise NativeUnsupported(f"{kind} post-processor")

    def _template(self, proc: dict[str, Any], config: dict[str, Any] | None, bos: Any, cls: Any, eos: Any,
                  sep: Any) -> None:
        single, pair = proc.get("single", []), proc.get("pair", [])
        first = last = None
        if len(single) > 1:
            if first := single[0].get("SpecialToken", {}).get("id"):
                if not config:
                    bos = first
                elif first not in (bos, cls):
                    raise NativeUnsupported("unusual leading special token")
                self.add["bos"] = first in (bos, cls)
            if last := single[-1].get("SpecialToken", {}).get("id"):
                if not config:
                    eos = last
                elif last != eos:
                    raise NativeUnsupported("unusual trailing special token")
                self.add["eos"] = last == eos
        if not pair:
            return
        start = 1 if first and pair[0].get("SpecialToken", {}).get("id") == first else 0
        stop = -1 if last and pair[-1].get("SpecialToken", {}).get("id") == last else None
        pair = pair[slice(start, stop)]
        if not pair:
            return
        a, b = pair[0].get("Sequence", {}).get("id"), pair[-1].get("Sequence", {}).get("id")
        if a != "A" or b != "B" or not (middle := pair[1:-1]):
            return
        add_sep = False
        entry = middle[0].get("SpecialToken", {}).get("id")
        if entry and entry in (sep, eos) and not last:
            add_sep = True
        second = middle[1].get("SpecialToken", {}).get("id") if len(middle) == 2 else None
        if second and second in (sep, eos):
            add_sep = True
        self.add["sep"] = add_sep
        if add_sep and not sep and config:
            raise NativeUnsupported("separator taken from the EOS token")

    def _from_config(self, model_dir: Path) -> None:
        config = _json_or_none(model_dir / "config.json")
        if config is None:
            return
        for typ in self.types:
            tid = config.get(f"{typ}_token_id")
            if tid is None and "text_config" in config:
                tid = config["text_config"].get(f"{typ}_token_id")
            self._set(typ, tid)


def _json_or_none(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None
