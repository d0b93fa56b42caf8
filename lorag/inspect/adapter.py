"""Read a PEFT LoRA adapter, find its base model locally, and check that the two belong together.

Usage::

    info = read_adapter("outputs/lora_X", search_paths=["~/models"])
    base = info.base_path or resolve_base(info.base_name, ["~/models"], info.path)
    check_adapter_matches_base(info, base)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorag.errors import AdapterError, ModelError
from lorag.inspect.chat_template import chat_template_of
from lorag.inspect.files import read_json, read_safetensors_header
from lorag.inspect.lora import LoraSettings, parse_lora_key, read_lora_settings
from lorag.inspect.shapes import base_tensor_shapes

_EMBED_NAMES = ("embed_tokens", "lm_head", "wte", "embed_out")
_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")


@dataclass(frozen=True)
class AdapterInfo:
    """What a LoRA adapter directory says about itself and its base."""

    path: Path
    base_name: str
    base_path: Path | None
    rank: int
    alpha: float
    scale: float
    target_modules: list[str]
    modules_to_save: list[str]
    touches_embeddings: bool
    qlora: bool
    weights_file: Path
    chat_template: str | None
    settings: LoraSettings = field(default_factory=LoraSettings, repr=False, compare=False)


def read_adapter(path: str | Path, search_paths: tuple[str, ...] | list[str] = ()) -> AdapterInfo:
    """Read adapter_config.json and the weight file's header; the base is resolved if it can be (else None)."""
    p = Path(path).expanduser()
    settings = read_lora_settings(p)
    weights = _weights_file(p)
    weight_names = _weight_names(weights)
    targets, to_save = list(settings.target_modules), list(settings.modules_to_save)
    touches = any(e in m for m in targets + to_save for e in _EMBED_NAMES) or any(
        e in n for n in weight_names for e in _EMBED_NAMES)
    base_name = settings.base_model
    base_path = _try_resolve(base_name, search_paths, p)
    return AdapterInfo(path=p, base_name=base_name, base_path=base_path, rank=settings.r, alpha=settings.alpha,
                       scale=settings.scale, target_modules=targets, modules_to_save=to_save,
                       touches_embeddings=touches, qlora=_is_qlora(p, base_name, base_path), weights_file=weights,
                       chat_template=chat_template_of(p), settings=settings)


def _weights_file(p: Path) -> Path:
    for name in _WEIGHT_FILES:
        if (p / name).exists():
            return p / name
    raise AdapterError(f"{p} has adapter_config.json but no adapter_model.safetensors.",
                       "Copy the adapter's weight file next to its config.")


def _weight_names(weights: Path) -> list[str]:
    if weights.suffix != ".safetensors":
        return []
    try:
        return [k for k in read_safetensors_header(weights) if k != "__metadata__"]
    except ModelError as exc:
        raise AdapterError(f"the adapter weights are unreadable: {exc.message}", exc.hint) from exc


def _is_qlora(p: Path, base_name: str, base_path: Path | None) -> bool:
    """QLoRA leaves traces: a 4-bit base name, a quantized base config, or PEFT's model card note."""
    if re.search(r"bnb|4bit|int4|nf4", base_name, re.IGNORECASE):
        return True
    if base_path and (base_path / "config.json").exists() and read_json(base_path / "config.json").get(
            "quantization_config"):
        return True
    readme = p / "README.md"
    text = readme.read_text(encoding="utf-8", errors="replace") if readme.exists() else ""
    return "load_in_4bit: True" in text or "load_in_8bit: True" in text


# --- finding the base ---------------------------------------------------------------------------------------------

def hf_cache_dirs() -> list[Path]:
    """The local Hugging Face hub caches ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)."""
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    dirs.append(Path.home() / ".cache" / "huggingface" / "hub")
    return list(dict.fromkeys(dirs))


def _try_resolve(name: str, search_paths: tuple[str, ...] | list[str], adapter_dir: Path) -> Path | None:
    try:
        return resolve_base(name, search_paths, adapter_dir)
    except AdapterError:
        return None


def _candidates(name: str, search_paths: tuple[str, ...] | list[str], adapter_dir: Path) -> list[Path]:
    direct = Path(name).expanduser()
    out = [direct] if direct.is_absolute() else [adapter_dir / direct, Path.cwd() / direct]
    short = name.rstrip("/").split("/")[-1]
    cache_name = "models--" + name.strip("/").replace("/", "--")
    roots = [Path(s).expanduser() for s in search_paths]
    for root in roots:
        out += [root / name, root / short, root / cache_name]
    out += [c / cache_name for c in hf_cache_dirs()]
    return list(dict.fromkeys(out))


def _snapshot(cache_repo: Path) -> Path | None:
    """The snapshot that refs/main names, else the newest snapshot with a config.json."""
    ref = cache_repo / "refs" / "main"
    if ref.exists():
        snap = cache_repo / "snapshots" / ref.read_text().strip()
        if (snap / "config.json").exists():
            return snap
    snaps = [s for s in (cache_repo / "snapshots").glob("*") if (s / "config.json").exists()]
    return max(snaps, key=lambda s: s.stat().st_mtime) if snaps else None


def resolve_base(name: str, search_paths: tuple[str, ...] | list[str], adapter_dir: str | Path) -> Path:
    """Find the base model directory for ``name`` locally (never the network); AdapterError lists where it looked."""
    if not name:
        raise AdapterError(f"{adapter_dir}/adapter_config.json has no base_model_name_or_path.",
                           "Set it to the base model's directory, or pass the base explicitly.")
    looked = []
    for cand in _candidates(name, search_paths, Path(adapter_dir)):
        looked.append(str(cand))
        if (cand / "config.json").exists():
            return cand
        if cand.name.startswith("models--") and (cand / "snapshots").is_dir():
            snap = _snapshot(cand)
            if snap:
                return snap
    raise AdapterError(f"base model {name!r} of adapter {adapter_dir} was not found locally; looked in: "
                       + ", ".join(looked) + ".",
                       "Put the base model in one of those places, or add its parent folder to models.search_paths.")


# --- checking adapter against base ----------------------------------------------------------------------------------

def check_adapter_matches_base(info: AdapterInfo, base_dir: str | Path,
                               base_tensors: dict[str, list[int]] | None = None) -> None:
    """Raise AdapterError when the adapter was made for another architecture or shape, or holds NaN/Inf.

    ``base_tensors`` are the base's HF tensor shapes when the caller has them already (else read here).
    """
    base_dir = Path(base_dir)
    if not (base_dir / "config.json").exists():
        raise AdapterError(f"base {base_dir} has no config.json.", "Point at the base model directory.")
    base_cfg = read_json(base_dir / "config.json")
    _check_recorded_architecture(info, base_dir, base_cfg)
    if info.weights_file.suffix != ".safetensors":
        return
    header = read_safetensors_header(info.weights_file)
    shapes = base_tensors if base_tensors is not None else base_tensor_shapes(base_dir)
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        _check_tensor(info, base_dir, key, list(meta["shape"]), shapes)
    _check_finite(info.weights_file, header)


def _check_recorded_architecture(info: AdapterInfo, base_dir: Path, base_cfg: dict[str, Any]) -> None:
    recorded = info.base_path
    if recorded is None or recorded.resolve() == base_dir.resolve() or not (recorded / "config.json").exists():
        return
    want = read_json(recorded / "config.json").get("model_type")
    if want and base_cfg.get("model_type") and want != base_cfg.get("model_type"):
        raise AdapterError(f"adapter {info.path} was trained on a {want} model ({recorded}), "
                           f"but the base {base_dir} is {base_cfg.get('model_type')}.",
                           "Use the base model the adapter was trained on.")


def _check_tensor(info: AdapterInfo, base_dir: Path, key: str, shape: list[int], base: dict[str, list[int]]) -> None:
    parsed = parse_lora_key(key)
    if parsed is None:  # modules_to_save copies and other extras: checked by name only
        return
    module = parsed.module
    base_shape = base.get(module + ".weight")
    if base_shape is None:
        raise AdapterError(f"adapter {info.path} changes {module}, which base {base_dir} does not have: "
                           "it was made for a different architecture.", "Use the base model it was trained on.")
    ab = parsed.part
    if ab == "A":
        ok, rank = shape[1] == base_shape[-1], shape[0]
    elif ab == "B":
        ok, rank = shape[0] == base_shape[0], shape[1]
    else:  # embedding LoRA: A is (r, vocab), B is (hidden, r)
        ok = shape[1] == base_shape[0] if ab == "embedding_A" else shape[0] == base_shape[1]
        rank = shape[0] if ab == "embedding_A" else shape[1]
    if not ok:
        raise AdapterError(f"adapter tensor {key} has shape {shape}, which does not fit {module} {base_shape} "
                           f"of base {base_dir}: the adapter was made for a model of another size.",
                           "Use the base model it was trained on.")
    if rank <= 0:
        raise AdapterError(f"adapter tensor {key} has rank {rank}.", "Re-save the adapter.")


_NONFINITE_MASK = {"BF16": (0x7F80, "<u2"), "F16": (0x7C00, "<u2"), "F32": (0x7F800000, "<u4")}


def _check_finite(weights: Path, header: dict[str, Any]) -> None:
    """Reject NaN/Inf values by testing exponent bits on the raw bytes (no torch needed)."""
    import numpy as np

    data = np.memmap(weights, dtype=np.uint8, mode="r")
    start = 8 + int.from_bytes(data[:8].tobytes(), "little")
    for key, meta in header.items():
        if key == "__metadata__" or meta["dtype"] not in _NONFINITE_MASK:
            continue
        mask, dt = _NONFINITE_MASK[meta["dtype"]]
        a, b = meta["data_offsets"]
        values = np.frombuffer(data[start + a:start + b].tobytes(), dtype=dt)
        if values.size and np.any((values & mask) == mask):
            raise AdapterError(f"adapter tensor {key} in {weights} holds NaN or Inf values: training diverged.",
                               "Use an earlier checkpoint or retrain with a lower learning rate.")
