"""Write safetensors shards tensor by tensor, so a merge holds one tensor in memory rather than a whole shard."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lorag.errors import BuildError

DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
               "F8_E4M3": 1, "F8_E5M2": 1}
Layout = list[tuple[str, str, list[int]]]  # (name, safetensors dtype, shape) in file order


def _torch_names() -> dict[Any, str]:
    import torch

    names = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
             torch.bool: "BOOL"}
    for attr, name in (("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2")):
        if hasattr(torch, attr):
            names[getattr(torch, attr)] = name
    return names


def nbytes(dtype: str, shape: list[int]) -> int:
    """Size in bytes of a tensor with this safetensors dtype and shape."""
    if dtype not in DTYPE_BYTES:
        raise BuildError(f"the base model has tensors of type {dtype}, which lorag's merge does not handle.")
    count = 1
    for dim in shape:
        count *= dim
    return count * DTYPE_BYTES[dtype]


def write_shard(path: Path, layout: Layout, produce: Callable[[str], Any]) -> None:
    """Write a safetensors file whose header is known up front; ``produce(name)`` returns each tensor in turn."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape in layout:
        size = nbytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to a multiple of 8 bytes
    dtype_names = _torch_names()
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(raw)))
        out.write(raw)
        for name, dtype, shape in layout:
            tensor = produce(name)
            if dtype_names.get(tensor.dtype) != dtype or list(tensor.shape) != list(shape):
                raise BuildError(f"merged tensor {name} came out as {tensor.dtype} {list(tensor.shape)}, "
                                 f"expected {dtype} {shape}; this is a bug in the merge.")
            out.write(memoryview(tensor.contiguous().reshape(-1).view(_u8()).numpy()))
            del tensor


def _u8() -> Any:
    import torch

    return torch.uint8


def shard_layout(fh: Any) -> Layout:
    """The (name, dtype, shape) of every tensor in an open safetensors file, in its key order."""
    layout: Layout = []
    for key in fh.keys():  # noqa: SIM118  (safe_open is not iterable)
        piece = fh.get_slice(key)
        layout.append((key, piece.get_dtype(), list(piece.get_shape())))
    return layout


def write_index(out_dir: Path, weight_map: dict[str, str]) -> None:
    """model.safetensors.index.json for the written shards (sizes read back from their headers)."""
    from safetensors import safe_open

    total = 0
    for shard in sorted(set(weight_map.values())):
        with safe_open(str(out_dir / shard), framework="pt") as fh:
            total += sum(nbytes(dtype, shape) for _, dtype, shape in shard_layout(fh))
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
