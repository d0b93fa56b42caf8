"""GGUF key/value pairs built in order and serialised exactly as llama.cpp's gguf-py writes them.

Setting a key that is already present replaces its value but keeps its place (gguf-py keeps its pairs in a
dict), which the converter relies on when a model class re-sets a key its base class wrote.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

# GGUFValueType (gguf.h)
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i", FLOAT32: "<f",
           BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}
_NUMPY = {INT32: "<i4", UINT32: "<u4", FLOAT32: "<f4", INT64: "<i8", UINT8: "u1"}


def pack_string(text: str | bytes) -> bytes:
    """A GGUF string: u64 length, then the UTF-8 bytes."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return struct.pack("<Q", len(raw)) + raw


def _pack_array(values: Any, sub: int) -> bytes:
    head = struct.pack("<IIQ", ARRAY, sub, len(values))
    if sub == STRING:
        raw = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
        # one struct call for the whole array: u64 length + bytes, per string
        fmt = "<" + "".join([f"Q{len(r)}s" for r in raw])
        return head + struct.pack(fmt, *[x for r in raw for x in (len(r), r)])
    import numpy as np

    return head + np.asarray(values, dtype=_NUMPY[sub]).tobytes()


def pack_value(vtype: int, value: Any, sub: int | None = None) -> bytes:
    """The value part of a pair: its type tag and its payload."""
    if vtype == STRING:
        return struct.pack("<I", STRING) + pack_string(value)
    if vtype == ARRAY:
        if not len(value):
            raise ValueError("a GGUF array cannot be empty")
        assert sub is not None
        return _pack_array(value, sub)
    return struct.pack("<I", vtype) + struct.pack(_SCALAR[vtype], value)


class KvList:
    """Ordered GGUF metadata: typed setters in the converter's vocabulary, packed once at the end."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[int, Any, int | None]] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def set(self, key: str, vtype: int, value: Any, sub: int | None = None) -> None:
        """Set ``key`` (a new key goes last; an existing one keeps its place)."""
        self._items[key] = (vtype, value, sub)

    def string(self, key: str, value: str) -> None:
        """A string value."""
        self.set(key, STRING, value)

    def u32(self, key: str, value: int) -> None:
        """An unsigned 32-bit value."""
        self.set(key, UINT32, int(value))

    def i32(self, key: str, value: int) -> None:
        """A signed 32-bit value."""
        self.set(key, INT32, int(value))

    def f32(self, key: str, value: float) -> None:
        """A 32-bit float value."""
        self.set(key, FLOAT32, float(value))

    def boolean(self, key: str, value: bool) -> None:
        """A bool value."""
        self.set(key, BOOL, bool(value))

    def array(self, key: str, values: Sequence[Any], sub: int) -> None:
        """An array of ``sub``-typed values."""
        self.set(key, ARRAY, values, sub)

    def remove(self, key: str) -> None:
        """Drop ``key`` if present."""
        self._items.pop(key, None)

    def value(self, key: str, default: Any = None) -> Any:
        """The stored value of ``key``."""
        item = self._items.get(key)
        return default if item is None else item[1]

    def packed(self) -> list[tuple[str, bytes, int, Any]]:
        """(key, raw pair bytes, value type, scalar value or None for arrays), in order."""
        out = []
        for key, (vtype, value, sub) in self._items.items():
            raw = pack_string(key) + pack_value(vtype, value, sub)
            out.append((key, raw, vtype, None if vtype == ARRAY else value))
        return out
