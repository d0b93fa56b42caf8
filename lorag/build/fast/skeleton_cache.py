"""Reuse the converter's metadata pass between builds whose metadata inputs are identical.

The skeleton (KV pairs, tensor list, small tensors) depends only on the staged directory's non-weight files,
the base's tensor names/shapes/dtypes, the bytes of the small tensors the converter writes itself, the
converter's --model-name and directory name, and the converter source. A new adapter on the same base (the
usual fine-tuning loop) therefore skips the slowest fixed cost of a build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from lorag.build.fast.reader import TensorLocation

_FILES = ("meta.json", "kv.bin", "small.bin")


def cache_root() -> Path | None:
    """$LORAG_FAST_CACHE (empty or "0" disables), else ~/.cache/lorag/fast-skeletons."""
    env = os.environ.get("LORAG_FAST_CACHE")
    if env is not None:
        return None if env in ("", "0") else Path(env)
    return Path.home() / ".cache" / "lorag" / "fast-skeletons"


def has_entries() -> bool:
    """True when the cache holds any skeleton (a build may then skip the metadata work)."""
    root = cache_root()
    try:
        return root is not None and any(root.iterdir())
    except OSError:
        return False


def skeleton_key(staged: Path, index: dict[str, TensorLocation], streamed: set[str], model_name: str | None,
                 tree: Path) -> str:
    """A digest of everything the converter's output depends on, short of the streamed weights' values."""
    digest = hashlib.sha256()
    digest.update(f"{staged.name}\0{model_name or ''}\0".encode())
    for name in ("convert_hf_to_gguf.py", "conversion/base.py", "gguf-py/gguf/gguf_writer.py"):
        path = tree / name
        digest.update(path.read_bytes() if path.is_file() else b"-")
    for entry in sorted(staged.iterdir()):
        if entry.is_file() and not entry.name.endswith((".safetensors", ".index.json")):
            digest.update(entry.name.encode() + b"\0" + entry.read_bytes())
    for hf_name in sorted(index):
        loc = index[hf_name]
        digest.update(f"{hf_name}\0{loc.dtype}\0{loc.shape}\0".encode())
        if hf_name not in streamed:  # norms, biases: their bytes end up in the GGUF as they are
            with open(loc.path, "rb") as fh:
                fh.seek(loc.start)
                digest.update(fh.read(loc.nbytes))
    return digest.hexdigest()[:32]


def lookup(key: str, work_dir: Path) -> bool:
    """Copy a cached skeleton into ``work_dir``; False when there is none."""
    root = cache_root()
    if root is None or not all((root / key / f).is_file() for f in _FILES):
        return False
    work_dir.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        shutil.copyfile(root / key / name, work_dir / name)
    return True


def store(key: str, work_dir: Path) -> None:
    """Keep a fresh skeleton for the next build (best effort: a full or read-only cache is ignored)."""
    root = cache_root()
    if root is None:
        return
    tmp = root / f".{key}.partial"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name in _FILES:
            shutil.copyfile(work_dir / name, tmp / name)
        if (root / key).exists():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, root / key)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
