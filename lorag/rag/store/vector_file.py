"""A SQLite store's vectors as one memory-mapped file beside it, so a new process needs not read every block.

``lorag.db.vectors`` holds the matrix of one revision (rows grouped by collection, as the in-process matrix is)
after a small JSON header naming the store, the revision and which document blocks it holds. A process whose
store is at that revision maps it instead of reading every blob from SQLite; any other revision ignores it
and writes a fresh one. It is only a cache: written atomically, never trusted for another store or revision,
and removing it loses nothing.

Layout: ``MAGIC`` (8 bytes), header length (8 bytes, little endian), the header, padding to 64 bytes, the
chunk ids (int64), the matrix (float32, row-major), and for a matrix large enough to need them the first-pass
codes of vector_codes.py (thresholds float32 (3, dim), then words uint64 (words, rows)), so a new process
needs not build them.
"""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lorag.rag.store.vector_codes import VectorCodes

log = logging.getLogger(__name__)
MAGIC = b"LORAGVEC"
FORMAT_VERSION = 2  # 2 adds the codes; a file of another version is ignored and rewritten
ALIGN = 64


@dataclass(frozen=True)
class VectorFile:
    """The contents of a vectors file: ids, matrix (both memory-mapped), spans and blocks of one revision."""

    revision: int
    ids: np.ndarray
    matrix: np.ndarray
    spans: dict[str, tuple[int, int]]
    blocks: list[tuple[int, int, str, int, int]]  # (doc id, generation, collection, first row, end row)
    codes: VectorCodes | None = None


def vector_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".vectors")


def read_vector_file(path: Path, store_id: str, revision: int) -> VectorFile | None:
    """The file's vectors if it was written for this store at this revision, else None."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
            if len(head) < 16 or head[:8] != MAGIC:
                return None
            (length,) = struct.unpack("<Q", head[8:])
            header = json.loads(fh.read(length))
        if (header.get("format") != FORMAT_VERSION or header.get("store_id") != store_id
                or header.get("revision") != revision):
            return None
        rows, dim, words = int(header["rows"]), int(header["dim"]), int(header.get("code_words", 0))
        offset = _aligned(16 + length)
        codes_at = offset + rows * 8 + rows * dim * 4
        if path.stat().st_size != codes_at + (3 * dim * 4 + words * rows * 8 if words else 0):
            return None  # cut short (a full disk): never map past the end
        if rows == 0:
            ids, matrix = np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
        else:
            ids = np.memmap(path, dtype=np.int64, mode="r", offset=offset, shape=(rows,))
            matrix = np.memmap(path, dtype=np.float32, mode="r", offset=offset + rows * 8, shape=(rows, dim))
        codes = None
        if words and rows:
            codes = VectorCodes(np.array(np.memmap(path, dtype=np.float32, mode="r", offset=codes_at, shape=(3, dim))),
                                np.memmap(path, dtype=np.uint64, mode="r", offset=codes_at + 3 * dim * 4,
                                          shape=(words, rows)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.debug("ignoring the vectors file %s: %s", path, exc)
        return None
    spans = {str(k): (int(a), int(b)) for k, (a, b) in header["spans"].items()}
    blocks = [(int(d), int(g), str(c), int(a), int(b)) for d, g, c, a, b in header["blocks"]]
    return VectorFile(revision, ids, matrix, spans, blocks, codes)


def write_vector_file(path: Path, store_id: str, data: VectorFile) -> None:
    """Write ``data`` atomically; a failure (read-only folder, full disk) only costs the next process time."""
    from lorag.atomic import atomic_open

    header = json.dumps({"format": FORMAT_VERSION, "store_id": store_id, "revision": data.revision,
                         "rows": int(data.matrix.shape[0]), "dim": int(data.matrix.shape[1]),
                         "code_words": len(data.codes.words) if data.codes is not None else 0,
                         "spans": data.spans, "blocks": data.blocks}, ensure_ascii=False).encode()
    pad = _aligned(16 + len(header)) - 16 - len(header)
    try:
        with atomic_open(path, "wb") as fh:
            fh.write(MAGIC + struct.pack("<Q", len(header)) + header + b"\0" * pad)
            fh.write(np.ascontiguousarray(data.ids, dtype=np.int64).data)
            fh.write(np.ascontiguousarray(data.matrix, dtype=np.float32).data)
            if data.codes is not None:
                fh.write(np.ascontiguousarray(data.codes.thresholds, dtype=np.float32).data)
                fh.write(np.ascontiguousarray(data.codes.words, dtype=np.uint64).data)
        # Readable by whoever can read the store (a temp file starts as 0600).
        path.chmod(path.with_name(path.name.removesuffix(".vectors")).stat().st_mode & 0o666)
    except OSError as exc:
        log.debug("cannot write the vectors file %s: %s", path, exc)


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN
