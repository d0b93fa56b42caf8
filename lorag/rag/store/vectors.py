"""Dense search over the SQLite store's vector blocks, held in one contiguous float32 matrix per process.

Each document's vectors are one blob (rows in chunk order) plus one blob of chunk ids, so loading 100k vectors
reads a few hundred blobs, never a Python object per chunk. The matrix is ordered by collection, so searching one
collection is a matrix product over one contiguous slice. After a write, only the changed documents are read.
A new process maps the matrix from the vectors file beside the store when that file holds the store's revision
(see vector_file.py), and writes that file when it had to read every block. A matrix of EXACT_BELOW rows or more is
searched through compact codes first, and only the closest rows are scored exactly (vector_codes.py).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lorag.rag.store.vector_codes import EXACT_BELOW, VectorCodes, rescore_depth
from lorag.rag.store.vector_file import VectorFile, read_vector_file, write_vector_file

Ranking = list[tuple[int, float]]
_codes_lock = threading.Lock()  # one build per snapshot even when several threads search at once


@dataclass
class _Block:
    collection: str
    ids: np.ndarray
    matrix: np.ndarray


@dataclass(frozen=True)
class VectorSnapshot:
    """The vectors of one store at one revision: ``ids[i]`` is the chunk of row i; ``spans`` maps a collection
    to its rows."""

    ids: np.ndarray
    matrix: np.ndarray
    spans: dict[str, tuple[int, int]]
    _codes: dict[int, VectorCodes] = field(default_factory=dict, compare=False, repr=False)

    def search(self, vector: np.ndarray, k: int, collection: str | None = None) -> Ranking:
        """The ``k`` rows most similar to ``vector`` (in one collection, or all).

        Up to EXACT_BELOW rows every row is scored; above, the rows whose codes are closest (vector_codes.py).
        """
        start, stop = (0, len(self.ids)) if collection is None else self.spans.get(collection, (0, 0))
        query = np.asarray(vector, dtype=np.float32).ravel()
        if stop <= start or query.size != self.matrix.shape[1]:
            return []
        ids, matrix = self.ids[start:stop], self.matrix[start:stop]
        if stop - start < EXACT_BELOW:
            return top_k(ids, similarities(matrix, query), k)
        rows = self.codes().nearest(query, rescore_depth(stop - start, k), start, stop)
        return top_k(ids[rows], similarities(np.take(matrix, rows, axis=0), query), k)

    def search_many(self, vectors: np.ndarray, k: int, collection: str | None = None) -> list[Ranking]:
        """``search`` for each row of ``vectors``; a small matrix is read once for all of them (one BLAS call)."""
        start, stop = (0, len(self.ids)) if collection is None else self.spans.get(collection, (0, 0))
        queries = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
        if stop <= start or queries.shape[1] != self.matrix.shape[1]:
            return [[] for _ in range(len(queries))]
        if stop - start >= EXACT_BELOW:  # the same rows as one search each, so batching never changes results
            return [self.search(q, k, collection) for q in queries]
        scores = self.matrix[start:stop] @ queries.T
        ids = self.ids[start:stop]
        return [top_k(ids, np.ascontiguousarray(scores[:, j]), k) for j in range(len(queries))]

    def codes(self) -> VectorCodes:
        """The matrix's codes, built on first use (0.1-0.3 s per 100k rows) and kept with the snapshot."""
        with _codes_lock:
            codes = self._codes.get(0)
            if codes is None:
                codes = self._codes[0] = VectorCodes.of(self.matrix)
        return codes


_EMPTY = VectorSnapshot(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32), {})


@dataclass
class VectorMatrix:
    """The vector blocks of one store, and the snapshot searches use (replaced whole, never changed in place)."""

    revision: int = -1
    blocks: dict[tuple[int, int], _Block] = field(default_factory=dict)  # (doc id, generation) -> block
    snapshot: VectorSnapshot = _EMPTY
    layout: list[tuple[int, int, str, int, int]] = field(default_factory=list)  # the snapshot's blocks by row

    def refresh(self, db: sqlite3.Connection, file: Path | None = None, store_id: str | None = None) -> bool:
        """Bring the matrix up to the store's revision; True when it was read whole from SQLite.

        The revision and the blocks are read in one read transaction, so a write committed meanwhile is
        never labelled with the older revision. A fresh process maps ``file`` when it holds this revision.
        """
        own = not db.in_transaction
        if own:
            db.execute("BEGIN")
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
            revision = int(row[0]) if row else 0
            if revision == self.revision:
                return False
            if not self.blocks and file is not None and store_id:
                mapped = read_vector_file(file, store_id, revision)
                if mapped is not None:
                    self._adopt(mapped)
                    return False
            cold = not self.blocks
            self._read_blocks(db)
            self._assemble()
            self.revision = revision
            return cold
        finally:
            if own and db.in_transaction:
                db.execute("COMMIT")

    def _read_blocks(self, db: sqlite3.Connection) -> None:
        """Drop the blocks deleted since the last refresh and read those written since."""
        present = {(int(d), int(g)) for d, g in db.execute("SELECT doc_id, gen FROM vectors")}
        for key in set(self.blocks) - present:
            del self.blocks[key]
        missing = sorted(present - set(self.blocks))
        for i in range(0, len(missing), 500):
            part = missing[i : i + 500]
            marks = ",".join("?" * len(part))
            for doc_id, gen, collection, dim, ids, data in db.execute(
                    f"SELECT doc_id, gen, collection, dim, ids, data FROM vectors WHERE doc_id IN ({marks})",
                    [d for d, _ in part]):
                self.blocks[(doc_id, gen)] = _Block(collection, np.frombuffer(ids, dtype=np.int64),
                                                    np.frombuffer(data, dtype=np.float32).reshape(-1, dim))

    def _adopt(self, mapped: VectorFile) -> None:
        self.blocks = {(d, g): _Block(c, mapped.ids[a:b], mapped.matrix[a:b]) for d, g, c, a, b in mapped.blocks}
        self.snapshot = VectorSnapshot(mapped.ids, mapped.matrix, mapped.spans)
        if mapped.codes is not None and mapped.codes.words.shape[1] == len(mapped.ids):
            self.snapshot._codes[0] = mapped.codes
        self.revision = mapped.revision
        self.layout = mapped.blocks

    def as_file(self) -> VectorFile:
        """The current snapshot in the form the vectors file stores."""
        return VectorFile(self.revision, self.snapshot.ids, self.snapshot.matrix, self.snapshot.spans, self.layout)

    def _assemble(self) -> None:
        order = sorted(self.blocks.items(), key=lambda kv: (kv[1].collection, kv[0]))
        dims = {b.matrix.shape[1] for _, b in order}
        dim = max(dims, key=lambda d: sum(b.matrix.shape[1] == d for _, b in order)) if dims else 0
        order = [(k, b) for k, b in order if b.matrix.shape[1] == dim]  # vectors of another embedder never mix
        ids = np.concatenate([b.ids for _, b in order]) if order else np.zeros(0, dtype=np.int64)
        matrix = np.concatenate([b.matrix for _, b in order]) if order else np.zeros((0, dim), dtype=np.float32)
        spans: dict[str, tuple[int, int]] = {}
        self.layout = []
        row = 0
        for key, block in order:
            n = len(block.ids)
            start, _ = spans.get(block.collection, (row, row))
            spans[block.collection] = (start, row + n)
            # Keep views into the big matrix only, so the blocks cost no memory of their own.
            self.blocks[key] = _Block(block.collection, ids[row : row + n], matrix[row : row + n])
            self.layout.append((key[0], key[1], block.collection, row, row + n))
            row += n
        self.snapshot = VectorSnapshot(ids, matrix, spans)


def similarities(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``matrix @ query`` without BLAS: one search's product is small, and OpenBLAS's helper threads stay spinning
    for a while after each call, taking the core the lexical side of the same hybrid search runs on (at 100k rows
    on 2 cores its time doubled). einsum's own loop is as fast as one BLAS thread here."""
    return np.einsum("ij,j->i", matrix, query)


def top_k(ids: np.ndarray, scores: np.ndarray, k: int, positive_only: bool = False) -> Ranking:
    """The ``k`` best (id, score) pairs, best first (ties keep row order)."""
    k = min(k, len(scores))
    if k <= 0:
        return []
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(int(ids[i]), float(scores[i])) for i in best if not positive_only or scores[i] > 0]


_matrices: dict[str, VectorMatrix] = {}
_lock = threading.Lock()


def snapshot_for(key: str, db: sqlite3.Connection, file: Path | None = None,
                 store_id: str | None = None) -> VectorSnapshot:
    """The process-wide vectors of the store ``key`` at its current revision (mapped from ``file`` when it
    holds that revision; rewritten there after a whole read from SQLite)."""
    with _lock:
        matrix = _matrices.setdefault(key, VectorMatrix())
        read_whole = matrix.refresh(db, file, store_id)
        snapshot, written = matrix.snapshot, matrix.as_file() if read_whole else None
    if written is not None and file is not None and store_id:
        # Outside the lock: other searches need not wait for it. The codes go with it, so no new process builds them.
        codes = snapshot.codes() if len(snapshot.ids) >= EXACT_BELOW else None
        write_vector_file(file, store_id, replace(written, codes=codes))
    return snapshot
