"""Disk speeds for the I/O floor and the output checks of bench/build_speed.py (identity, RMSE vs F16)."""

from __future__ import annotations

import mmap
import os
import sys
import time
from pathlib import Path
from typing import Any


def _tree() -> Path:
    from lorag.build.convert import ensure_converters

    return ensure_converters()


def disk_speeds(files: list[Path], sample: int, scratch: Path) -> tuple[float, float, str]:
    """Sequential read (O_DIRECT when the filesystem allows it) and write+fsync speeds in bytes/s."""
    chunk = 64 << 20
    buf = mmap.mmap(-1, chunk)
    how = "O_DIRECT"
    done, started = 0, time.monotonic()
    for path in files:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECT", 0))
        except OSError:
            fd, how = os.open(path, os.O_RDONLY), "buffered"
        try:
            while done < sample:
                try:
                    got = os.readv(fd, [buf])
                except OSError:
                    os.close(fd)
                    fd, how = os.open(path, os.O_RDONLY), "buffered"
                    os.lseek(fd, 0, os.SEEK_SET)
                    got = os.readv(fd, [buf])
                if got <= 0:
                    break
                done += got
        finally:
            os.close(fd)
        if done >= sample:
            break
    read_speed = done / (time.monotonic() - started)
    target = scratch / "write-test.bin"
    block = os.urandom(16 << 20)
    started = time.monotonic()
    with open(target, "wb") as fh:
        for _ in range(max(1, min(sample, 2 << 30) // len(block))):
            fh.write(block)
        fh.flush()
        os.fsync(fh.fileno())
    write_speed = target.stat().st_size / (time.monotonic() - started)
    target.unlink()
    return read_speed, write_speed, how


def compare(reference: Path, fast: Path, f16: Path | None, sample: int) -> dict[str, Any]:
    """Whole-file identity, same header (names/types/shapes/metadata), and RMSE vs F16 on sampled tensors."""
    import hashlib

    import numpy as np

    sys.path.insert(0, str(_tree() / "gguf-py"))
    from gguf import GGUFReader
    from gguf.quants import dequantize

    def digest(p: Path) -> str:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            while block := fh.read(64 << 20):
                h.update(block)
        return h.hexdigest()

    ra, rb = GGUFReader(reference), GGUFReader(fast)
    with open(reference, "rb") as fa, open(fast, "rb") as fb:
        same_header = ra.data_offset == rb.data_offset and fa.read(ra.data_offset) == fb.read(rb.data_offset)
    out: dict[str, Any] = {"identical": digest(reference) == digest(fast), "same_header": same_header}
    differing = sum(1 for ta, tb in zip(ra.tensors, rb.tensors, strict=True)
                    if not np.array_equal(np.asarray(ta.data), np.asarray(tb.data)))
    out["tensors_with_different_bytes"] = differing
    if f16 is None or not f16.exists() or out["identical"]:
        return out
    rf = {t.name: t for t in GGUFReader(f16).tensors}
    rows: list[dict[str, Any]] = []
    for ta, tb in zip(ra.tensors, rb.tensors, strict=True):
        if ta.tensor_type.name in ("F32", "F16") or (len(rows) >= sample and ta.name != "output.weight"):
            continue
        n_rows = min(512, int(ta.shape[1]) if len(ta.shape) > 1 else 1)
        ref_rows = np.asarray(rf[ta.name].data)[:n_rows].astype(np.float32)
        per_row = ta.data.shape[-1]
        da = dequantize(np.asarray(ta.data)[:n_rows].reshape(-1)[: n_rows * per_row], ta.tensor_type)
        db = dequantize(np.asarray(tb.data)[:n_rows].reshape(-1)[: n_rows * per_row], tb.tensor_type)
        da, db = da.reshape(ref_rows.shape), db.reshape(ref_rows.shape)
        rows.append({"tensor": ta.name, "type": ta.tensor_type.name,
                     "rmse_llama_cpp": float(np.sqrt(((da - ref_rows) ** 2).mean())),
                     "rmse_fast": float(np.sqrt(((db - ref_rows) ** 2).mean())),
                     "bytes_differ": float((np.asarray(ta.data)[:n_rows] != np.asarray(tb.data)[:n_rows]).mean())})
    out["rmse_vs_f16"] = rows
    return out
