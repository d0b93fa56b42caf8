"""Write a GGUF whose header is known up front, then stream tensor data into it in order."""

from __future__ import annotations

import ctypes
import functools
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from lorag.build.fast.ggml import GGML_TYPES

GGUF_VERSION = 3
GGML_QNT_VERSION = 2  # ggml.h; llama-quantize stamps it on every output
_UINT32 = 4  # GGUFValueType.UINT32
WRITE_BEHIND = 256 << 20  # bytes written between two requests to start writing them to the disk
_SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>: start write-out of the range's dirty pages, do not wait for it


@dataclass(frozen=True)
class OutputTensor:
    """A tensor of the output file: name, numpy-order shape, ggml type name and byte size."""

    name: str
    shape: tuple[int, ...]
    qtype: str
    nbytes: int


def pad(n: int, alignment: int) -> int:
    """``n`` rounded up to a multiple of ``alignment``."""
    return (n + alignment - 1) // alignment * alignment


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _u32_kv(key: str, value: int) -> bytes:
    return _string(key) + struct.pack("<II", _UINT32, value)


def quantized_kv(kv: Sequence[tuple[str, bytes]], file_type: int) -> list[bytes]:
    """The KV section llama-quantize writes: the input's pairs in order, then quantization version and
    file type re-set (gguf_set_val removes a key and appends it)."""
    moved = ("general.quantization_version", "general.file_type")
    kept = [raw for key, raw in kv if key not in moved and not key.startswith("split.")]
    return [*kept, _u32_kv(moved[0], GGML_QNT_VERSION), _u32_kv(moved[1], file_type)]


def header_bytes(kv: Sequence[bytes], tensors: Sequence[OutputTensor], alignment: int) -> bytes:
    """Magic, counts, KV pairs, tensor infos with their data offsets, padded to the alignment."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", GGUF_VERSION, len(tensors), len(kv)))
    for raw in kv:
        out += raw
    offset = 0
    for t in tensors:
        out += _string(t.name) + struct.pack("<I", len(t.shape))
        out += b"".join(struct.pack("<Q", d) for d in reversed(t.shape))
        out += struct.pack("<IQ", GGML_TYPES[t.qtype], offset)
        offset += pad(t.nbytes, alignment)
    out += bytes(pad(len(out), alignment) - len(out))
    return bytes(out)


class TensorStream:
    """Appends each tensor's bytes plus alignment padding, checking sizes against the header.

    Every WRITE_BEHIND bytes the kernel is asked to start writing what came before (Linux sync_file_range):
    otherwise the whole output waits as dirty pages (a machine with much memory holds gigabytes before its
    background writeback starts) and the closing fsync writes it all after the last tensor, with the disk idle
    until then.
    """

    def __init__(self, fh: IO[bytes], alignment: int) -> None:
        self.fh = fh
        self.alignment = alignment
        self.written = 0
        self._start = fh.tell()
        self._flushed = self._start  # file offset up to which write-out has been requested

    def write(self, tensor: OutputTensor, data: Any) -> None:
        """Write one tensor's data (bytes-like / numpy uint8) and its padding."""
        view = memoryview(data).cast("B")
        if view.nbytes != tensor.nbytes:
            raise ValueError(f"{tensor.name}: {view.nbytes} bytes for a {tensor.qtype} tensor of {tensor.nbytes}")
        self.fh.write(view)
        extra = pad(view.nbytes, self.alignment) - view.nbytes
        if extra:
            self.fh.write(bytes(extra))
        self.written += view.nbytes + extra
        end = self._start + self.written
        if end - self._flushed >= WRITE_BEHIND:
            self.fh.flush()
            start_write_out(self.fh.fileno(), self._flushed, end - self._flushed)
            self._flushed = end


def start_write_out(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range's dirty pages to the disk without waiting (no-op where unsupported)."""
    call = _sync_file_range()
    if call is not None:
        call(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # best effort: a failure only leaves the work to fsync


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if os.name != "posix":
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).sync_file_range  # the C library the interpreter runs on
    except (OSError, AttributeError):  # not Linux
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func  # type: ignore[no-any-return]
