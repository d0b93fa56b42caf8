"""The tokenizer's 250k pieces in a form a new process opens in milliseconds: pieces decoded a few at a time.

Building a dict of every piece costs a new process 0.2-0.4 s before its first query; a query needs a few hundred
pieces. Here the pieces are grouped by their first two characters (single characters apart), and a group becomes a
dict only when a text asks for a piece that starts with its two characters.

Usage::

    write_pieces(folder / "pieces.npz", pieces, scores)
    lookup = PieceIndex(folder / "pieces.npz")
    lookup.get("▁東京")        # (id, score) or None, as dict.get on every piece would give
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_pieces(path: Path, pieces: list[str], scores: np.ndarray) -> None:
    """Save ``pieces`` (their ids are their positions) and ``scores`` grouped for PieceIndex."""
    encoded = [p.encode("utf-8") for p in pieces]
    offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in encoded])
    ids = np.arange(len(pieces))
    longer = np.array([len(p) >= 2 for p in pieces], dtype=bool)
    keys = np.array([p[:2] for p in pieces], dtype="<U2")
    order = ids[longer][np.argsort(keys[longer], kind="stable")]  # ids ascending within a group: duplicates, last wins
    unique, starts = np.unique(keys[order], return_index=True)
    with path.open("wb") as fh:
        np.savez(fh, blob=np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets=offsets,
                 scores=np.asarray(scores, dtype=np.float32), keys=unique, starts=np.append(starts, len(order)),
                 order=order, singles=ids[np.array([len(p) == 1 for p in pieces], dtype=bool)],
                 longest=np.array(max(map(len, pieces), default=1)))


class PieceIndex:
    """``get(piece) -> (id, score) | None`` over every piece of the vocabulary, as a segmenter asks for them."""

    def __init__(self, path: Path) -> None:
        with np.load(path) as data:
            self._blob = data["blob"].tobytes()
            self._offsets = data["offsets"]
            self._scores = data["scores"]
            self._keys, self._starts, self._order = data["keys"], data["starts"], data["order"]
            singles = data["singles"]
            self.longest = int(data["longest"])  # characters
        self._singles = {self._piece(int(i)): (int(i), float(self._scores[i])) for i in singles}
        self._groups: dict[str, dict[str, tuple[int, float]]] = {}
        self.size = len(self._scores)
        self.min_score = float(self._scores.min()) if len(self._scores) else 0.0

    def get(self, piece: str) -> tuple[int, float] | None:
        if len(piece) == 1:
            return self._singles.get(piece)
        key = piece[:2]
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = self._group(key)
        return group.get(piece)

    def _group(self, key: str) -> dict[str, tuple[int, float]]:
        i = int(np.searchsorted(self._keys, key))
        if i >= len(self._keys) or self._keys[i] != key:
            return {}
        ids = self._order[self._starts[i] : self._starts[i + 1]].tolist()
        return {self._piece(j): (j, float(self._scores[j])) for j in ids}

    def _piece(self, i: int) -> str:
        return self._blob[self._offsets[i] : self._offsets[i + 1]].decode("utf-8")
