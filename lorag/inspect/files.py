"""The ground floor of inspection: read JSON files and safetensors headers, turning every failure into a ModelError.

Usage::

    config = text_config(read_json(model_dir / "config.json"))
    shapes, dtypes = safetensors_shapes(model_dir)
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from lorag.errors import ModelError

MAX_HEADER_BYTES = 100_000_000


def read_json(path: Path) -> dict[str, Any]:
    """Load a JSON object, turning any failure into a ModelError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}", "Check the file is complete JSON.") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path} must hold a JSON object.")
    return data


def read_json_or_empty(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or {} when the file is absent, unreadable or not an object."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The language-model part of a config (multimodal configs nest it under text_config)."""
    inner = cfg.get("text_config")
    return {**cfg, **inner} if isinstance(inner, dict) else cfg


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """Read a safetensors file's JSON header (names, dtypes, shapes, offsets) and check the file is complete."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ModelError(f"{path} is not a safetensors file (shorter than 8 bytes).", "Re-copy or re-save it.")
            (n,) = struct.unpack("<Q", raw)
            size = path.stat().st_size
            if n > min(size - 8, MAX_HEADER_BYTES):
                raise ModelError(f"{path} is truncated or not a safetensors file (header of {n} bytes).",
                                 "Re-copy or re-save it.")
            header: dict[str, Any] = json.loads(fh.read(n))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}", "Re-copy or re-save the file.") from exc
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        raise ModelError(f"{path} is truncated: the header promises {8 + n + end} bytes, the file has {size}.",
                         "Re-copy or re-save it.")
    return header


def safetensors_shapes(directory: Path) -> tuple[dict[str, list[int]], dict[str, str]]:
    """Shapes and dtypes of every tensor in a directory's *.safetensors files (headers only)."""
    shapes: dict[str, list[int]] = {}
    dtypes: dict[str, str] = {}
    for f in sorted(directory.glob("*.safetensors")):
        for name, meta in read_safetensors_header(f).items():
            if name != "__metadata__":
                shapes[name] = list(meta["shape"])
                dtypes[name] = meta["dtype"]
    return shapes, dtypes


def missing_shards(model_dir: Path) -> list[str]:
    """Shards that ``model.safetensors.index.json`` names but the directory lacks (empty without an index)."""
    index = model_dir / "model.safetensors.index.json"
    if not index.is_file():
        return []
    weight_map = read_json(index).get("weight_map")
    if not isinstance(weight_map, dict):
        raise ModelError(f"{index} has no weight_map.", "Re-copy the model, or download it again.")
    return sorted({str(s) for s in weight_map.values() if not (model_dir / str(s)).is_file()})


def incomplete_message(model_dir: Path, missing: list[str]) -> str:
    """The one wording for a model whose index names shards that are not there."""
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    return (f"the model {model_dir} is incomplete: {missing[0]}{more}, named in model.safetensors.index.json, "
            "is missing.")
