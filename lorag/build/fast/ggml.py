"""A ctypes binding to ggml's own CPU quantizer (``ggml_quantize_chunk``), parallel over rows in threads.

ggml releases no Python lock because it never holds one: ctypes drops the GIL for the call, so plain Python
threads quantize in parallel and the output is byte for byte what ``llama-quantize`` writes.
"""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

from lorag.errors import BuildError

# ggml_type values (ggml/include/ggml.h); stable across llama.cpp releases.
GGML_TYPES: dict[str, int] = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
    "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "BF16": 30,
}
# (elements per block, bytes per block) for the types we write.
BLOCK: dict[str, tuple[int, int]] = {
    "F32": (1, 4), "F16": (1, 2), "BF16": (1, 2), "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22),
    "Q5_1": (32, 24), "Q8_0": (32, 34), "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144),
    "Q5_K": (256, 176), "Q6_K": (256, 210),
}
GGML_TYPE_NAMES = {v: k for k, v in GGML_TYPES.items()}


def row_size(qtype: str, n_per_row: int) -> int:
    """Bytes of one row of ``n_per_row`` values in ``qtype`` (ggml_row_size without the library)."""
    per_block, nbytes = BLOCK[qtype]
    return nbytes * (n_per_row // per_block)


def tensor_nbytes(qtype: str, shape: tuple[int, ...]) -> int:
    """Bytes of a tensor of numpy-order ``shape`` (last axis = row) stored as ``qtype``."""
    rows = 1
    for dim in shape[:-1]:
        rows *= dim
    return rows * row_size(qtype, shape[-1])


def _candidate_paths() -> list[Path]:
    paths: list[Path] = []
    env = os.environ.get("LORAG_GGML_LIB")
    if env:
        paths.append(Path(env))
    try:
        import importlib.util

        spec = importlib.util.find_spec("llama_cpp")
        if spec is not None and spec.origin is not None:
            paths.append(Path(spec.origin).parent / "lib" / "libggml-base.so")
    except (ImportError, ValueError):
        pass
    return paths


@lru_cache(maxsize=1)
def load_ggml() -> Any:
    """Load libggml-base.so from $LORAG_GGML_LIB or llama-cpp-python's package, with typed signatures."""
    for path in _candidate_paths():
        if path.is_file():
            lib = ctypes.CDLL(str(path))
            lib.ggml_quantize_chunk.restype = ctypes.c_size_t
            lib.ggml_quantize_chunk.argtypes = [
                ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                ctypes.c_int64, ctypes.c_void_p,
            ]
            lib.ggml_row_size.restype = ctypes.c_size_t
            lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
            lib.ggml_quantize_init.restype = None
            lib.ggml_quantize_init.argtypes = [ctypes.c_int]
            return lib
    tried = ", ".join(str(p) for p in _candidate_paths()) or "nothing"
    raise BuildError(f"ggml's quantizer library (libggml-base.so) was not found (tried {tried}).",
                     "Install llama-cpp-python or set LORAG_GGML_LIB to the path of libggml-base.so.")


def quantize_rows(qtype: str, rows: Any, threads: int = 0, pool: ThreadPoolExecutor | None = None) -> Any:
    """Quantize a C-contiguous float32 numpy array (nrows, n_per_row) with ggml, rows split across threads."""
    import numpy as np

    src = np.ascontiguousarray(rows, dtype=np.float32)
    nrows, n_per_row = src.shape
    if qtype == "F32":
        return src.reshape(-1).view(np.uint8)
    if qtype == "F16":
        return src.astype(np.float16).reshape(-1).view(np.uint8)
    lib = load_ggml()
    gtype = GGML_TYPES[qtype]
    rsize = int(lib.ggml_row_size(gtype, n_per_row))
    out = np.empty(nrows * rsize, dtype=np.uint8)
    lib.ggml_quantize_init(gtype)  # once, before threads: some types build lookup tables
    n_threads = threads or os.cpu_count() or 1
    # Chunks of rows big enough to amortise the call, small enough to balance the threads.
    step = max(1, min(nrows, -(-nrows // (n_threads * 4))))
    src_ptr, out_ptr = src.ctypes.data, out.ctypes.data

    def work(start: int) -> int:
        count = min(step, nrows - start)
        return int(lib.ggml_quantize_chunk(gtype, src_ptr + start * n_per_row * 4, out_ptr + start * rsize,
                                           0, count, n_per_row, None))

    starts = range(0, nrows, step)
    if pool is not None:
        written = sum(pool.map(work, starts))
    elif n_threads == 1 or len(starts) == 1:
        written = sum(work(s) for s in starts)
    else:
        with ThreadPoolExecutor(n_threads) as own:
            written = sum(own.map(work, starts))
    if written != out.nbytes:
        raise BuildError(f"ggml wrote {written} bytes for a {qtype} tensor, expected {out.nbytes}.")
    return out
