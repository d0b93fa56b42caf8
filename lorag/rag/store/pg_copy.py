"""Chunks as PostgreSQL binary COPY data: the bulk path of the PostgreSQL store.

Text COPY would make the server parse 384 decimal floats per vector and the client print them; the binary
format sends each vector as its float4 bytes and the tsvector already built (sorted lexemes, one position per
occurrence up to MAX_TF), so the server only copies bytes into pages.

Usage::

    with cursor.copy(f"COPY lorag_chunks ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(encode(doc_id, collection, chunks))
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from lorag.rag.store.base import TOKEN_SEP, NewChunk
from lorag.rag.store.pg_sql import MAX_TF, usable

COLUMNS = 'doc_id, collection, ord, page, start, "end", text, tokens, page_label, n_tokens, tsv, embedding'
HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
_FIELDS = struct.pack(">h", 12)
_NULL = struct.pack(">i", -1)
_INT8 = struct.Struct(">iq")  # length 8, then the value
_INT4 = struct.Struct(">ii")
_POSITIONS = [b"".join(struct.pack(">H", p) for p in range(1, n + 1)) for n in range(MAX_TF + 1)]


def encode(doc_id: int, collection: str, chunks: Sequence[NewChunk], first_ord: int = 0) -> bytes:
    """One document's chunks as a complete binary COPY stream (header, rows, trailer)."""
    head = _INT8.pack(8, doc_id) + _text(collection)
    rows = [HEADER]
    for i, c in enumerate(chunks):
        rows += [_FIELDS, head, _INT4.pack(4, first_ord + i), _int4(c.page), _INT4.pack(4, c.start),
                 _INT4.pack(4, c.end), _text(c.text), _text(TOKEN_SEP.join(c.tokens)), _opt_text(c.page_label),
                 _INT4.pack(4, len(c.tokens)), _field(tsvector(c.tokens)), _opt_vector(c.vector)]
    rows.append(TRAILER)
    return b"".join(rows)


def tsvector(tokens: Sequence[str]) -> bytes:
    """The binary tsvector of ``tokens``: the same value ``pg_sql.tsvector_text`` spells in text."""
    counts: dict[bytes, int] = {}
    for t in tokens:
        if usable(t):
            key = t.encode()
            counts[key] = counts.get(key, 0) + 1
    # tsvector keeps its lexemes in memcmp order, shorter first on a tie: exactly Python's bytes order.
    parts = [struct.pack(">i", len(counts))]
    for lexeme in sorted(counts):
        n = min(counts[lexeme], MAX_TF)
        parts += [lexeme, b"\x00", struct.pack(">H", n), _POSITIONS[n]]
    return b"".join(parts)


def vector(value: np.ndarray) -> bytes:
    """pgvector's binary ``vector``: dimensions (int16), an unused int16, then big-endian float4s."""
    flat = np.asarray(value, dtype=np.float32).ravel()
    return struct.pack(">hh", flat.size, 0) + flat.astype(">f4").tobytes()


def _field(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


def _text(value: str) -> bytes:
    return _field(value.encode())


def _opt_text(value: str | None) -> bytes:
    return _NULL if value is None else _text(value)


def _int4(value: int | None) -> bytes:
    return _NULL if value is None else _INT4.pack(4, value)


def _opt_vector(value: np.ndarray | None) -> bytes:
    return _NULL if value is None or not value.size else _field(vector(value))
