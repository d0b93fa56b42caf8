"""The ``general.*`` keys llama.cpp's converter writes: name parts from the model id, size label, sampling.

Follows gguf-py's Metadata heuristics (model id → basename / finetune / version / size label, the
directory-name fallback, generation_config.json's sampling defaults) for a model directory without a model
card front matter or a metadata override; anything else is left to the converter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorag.build.fast.gguf_values import KvList
from lorag.inspect.files import read_json_or_empty


class NativeUnsupported(Exception):
    """The native metadata path does not know this input: run llama.cpp's converter instead."""


def json_object(path: Path) -> dict[str, Any]:
    """A model file's JSON object; {} when absent or not an object, NativeUnsupported when unreadable."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NativeUnsupported(f"cannot read {path.name}: {exc}") from exc
    return data if isinstance(data, dict) else {}


@dataclass
class NameParts:
    """What a model id says about the model (None where it says nothing)."""

    name: str | None = None
    organization: str | None = None
    basename: str | None = None
    finetune: str | None = None
    version: str | None = None
    size_label: str | None = None


# (generation_config key(s), GGUF key, writer) in the order the converter writes them
_SAMPLING: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("sequence",), "sequence", "string"), (("top_k",), "top_k", "i32"), (("top_p",), "top_p", "f32"),
    (("min_p",), "min_p", "f32"), (("xtc_probability",), "xtc_probability", "f32"),
    (("xtc_threshold",), "xtc_threshold", "f32"), (("temperature",), "temp", "f32"),
    (("penalty_last_n",), "penalty_last_n", "i32"), (("penalty_repeat", "repetition_penalty"), "penalty_repeat", "f32"),
    (("mirostat",), "mirostat", "i32"), (("mirostat_tau",), "mirostat_tau", "f32"),
    (("mirostat_eta",), "mirostat_eta", "f32"),
)
_SIZE = re.compile(r"(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)", re.IGNORECASE)


def id_to_title(text: str) -> str:
    """Title-case the words of a model id, leaving acronyms and version numbers alone."""
    return " ".join(w.title() if w.islower() and not re.match(r"^(v\d+(?:\.\d+)*|\d.*)$", w) else w
                    for w in text.strip().replace("-", " ").split())


def _size_part(part: str, total_params: int, types: set[str]) -> str:
    part = part.replace("_", ".")
    if part[-1].isdecimal():  # bloom-7b1 → 7.1b
        part = part[:-2] + "." + part[-1] + part[-2]
    if len(part) > 1 and part[-2].isdecimal() and part[-1] in "kmbt":
        part = part[:-1] + part[-1].upper()
    if total_params != 0:
        try:
            label = float(part[:-1]) * pow(1000, " KMBT".find(part[-1]))
            if (total_params < 0 and label < abs(total_params) // 8) or (
                    total_params > 0 and abs(label - total_params) > 7 * total_params // 8):
                types.add("finetune")  # most likely a context length
                part = part[:-1] + part[-1].lower()
        except ValueError:
            pass
    if not types:
        types.add("size_label")
    return part


def _annotate(parts: list[str], total_params: int) -> list[set[str]]:
    types: list[set[str]] = [set() for _ in parts]
    for i, part in enumerate(parts):
        if re.fullmatch(r"(v|iter)?\d+([.]\d+)*", part, re.IGNORECASE):
            types[i].add("version")
        elif re.fullmatch(r"i?q\d(_\w)*|b?fp?(16|32)", part, re.IGNORECASE):
            types[i].add("type")
            parts[i] = part.upper()
        elif i > 0 and _SIZE.fullmatch(part):
            parts[i] = _size_part(part, total_params, types[i])
        elif i > 0 and re.fullmatch(r"chat|instruct|vision|lora", part, re.IGNORECASE):
            types[i].add("type" if total_params < 0 and part.lower() == "lora" else "finetune")
    if any(c.isdecimal() for n, t in zip(parts, types, strict=True) if "size_label" in t for c in n):
        for n, t in zip(parts, types, strict=True):
            if "size_label" in t and all(c.isalpha() for c in n):
                t.remove("size_label")
    at_start = True
    for part, t in zip(parts, types, strict=True):
        if at_start and ((not t and part[0].isalpha()) or "version" in t):
            t.add("basename")
        else:
            at_start = False
            if not t:
                t.add("finetune")
    for t in reversed(types):
        if "basename" in t and len(t) > 1:
            t.remove("basename")
        else:
            break
    return types


def model_id_parts(model_id: str | None, total_params: int = 0) -> NameParts:
    """gguf-py's get_model_id_components: split '<org>/<name>' and annotate the name's dash-separated parts."""
    if model_id is None:
        return NameParts()
    if " " in model_id:
        return NameParts(name=model_id)
    org, full = model_id.split("/", 1) if "/" in model_id else (None, model_id)
    if org is not None and org[:1] == ".":
        org = None
    parts = [p for p in full.split("-") if p]
    types = _annotate(parts, total_params)

    def joined(kind: str, exclude: str | None = None) -> str | None:
        chosen = [p for p, t in zip(parts, types, strict=True) if kind in t and (exclude is None or exclude not in t)]
        if kind == "size_label":
            chosen = list(dict.fromkeys(chosen))
        return "-".join(chosen) or None

    basename, size_label, finetune = joined("basename"), joined("size_label"), joined("finetune")
    version = joined("version", exclude="basename")
    if size_label is None and finetune is None and version is None:
        basename = None
    return NameParts(full, org, basename, finetune, version, size_label)


def size_label(total_params: int) -> str:
    """gguf-py's size label of a dense model (e.g. 7.6B, 494M)."""
    count = abs(total_params)
    scale, suffix = next(((s, x) for limit, s, x in ((1e12, 1e-12, "T"), (1e9, 1e-9, "B"), (1e6, 1e-6, "M"))
                          if count > limit), (1e-3, "K"))
    scaled = count * scale
    fix = max(2 - len(str(round(scaled)).lstrip("0")), 0)
    return f"{scaled:.{fix}f}{suffix}"


def _check_model_card(model_dir: Path) -> None:
    card = model_dir / "README.md"
    if card.is_file():
        lines = card.read_text(encoding="utf-8").splitlines()
        if lines and lines[0] == "---":
            raise NativeUnsupported("the model card has front matter (the converter reads it)")


def general_parts(model_dir: Path, config: dict[str, Any], model_name: str | None, total_params: int) -> NameParts:
    """Name, organisation, basename, finetune, version and size label, as the converter derives them."""
    _check_model_card(model_dir)
    meta = NameParts()
    sources = []
    name_or_path = config.get("_name_or_path")
    if name_or_path is not None and name_or_path.count("/") <= 1:
        sources.append(name_or_path)
    sources.append(model_dir.name)
    for model_id in sources:
        found = model_id_parts(model_id, total_params)
        if meta.name is None and found.name is not None:
            meta.name = id_to_title(found.name)
        if meta.organization is None and found.organization is not None:
            meta.organization = id_to_title(found.organization)
        for field in ("basename", "finetune", "version", "size_label"):
            if getattr(meta, field) is None:
                setattr(meta, field, getattr(found, field))
    if model_name is not None:
        meta.name = model_name
    if meta.name is None:
        meta.name = model_dir.name
    if meta.size_label is None and total_params > 0:
        meta.size_label = size_label(total_params)
    return meta


def add_general(kv: KvList, model_dir: Path, config: dict[str, Any], model_name: str | None,
                total_params: int) -> None:
    """general.type, the sampling defaults and the name keys, in the converter's order."""
    kv.string("general.type", "model")
    gen = read_json_or_empty(model_dir / "generation_config.json")
    for keys, gguf_key, kind in _SAMPLING:
        value = next((gen[k] for k in keys if k in gen), None)
        if value is not None:
            getattr(kv, kind)(f"general.sampling.{gguf_key}", value)
    parts = general_parts(model_dir, config, model_name, total_params)
    assert parts.name is not None
    kv.string("general.name", parts.name)
    for field in ("version", "organization", "finetune", "basename", "size_label"):
        value = getattr(parts, field)
        if value is not None:
            kv.string(f"general.{field}", value)
