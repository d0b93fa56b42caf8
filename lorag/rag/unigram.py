"""SentencePiece unigram segmentation (Viterbi over the pieces' log-probabilities) in plain Python.

The same segmentation as the ``tokenizers`` library's Unigram model for a vocabulary without byte fallback
(unknown characters become the unknown id, consecutive ones fused), at a fraction of its memory: for XLM-RoBERTa's
250k pieces one dict of pieces instead of about 250 MB of tries.

Usage::

    seg = UnigramSegmenter(pieces, scores, unk_id=3)
    ids = seg.encode("▁東京は日本の首都です。")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

UNK_PENALTY = 10.0  # SentencePiece scores an unknown character this far below the rarest piece


class PieceLookup(Protocol):
    """piece -> (id, score), or None for a string that is no piece (a dict, or e5vocab.PieceIndex)."""

    def get(self, piece: str, /) -> tuple[int, float] | None: ...


class UnigramSegmenter:
    """The most probable split of a text into vocabulary pieces, as ids."""

    def __init__(self, pieces: Sequence[str], scores: Sequence[float], unk_id: int) -> None:
        # One dict of the pieces (built in tens of milliseconds: a new process pays it before its first query); the
        # scan from each position tries every length up to the longest piece.
        entries = zip(range(len(pieces)), map(float, scores), strict=True)
        table: dict[str, tuple[int, float]] = dict(zip(pieces, entries, strict=True))
        table.pop("", None)
        self._pieces: PieceLookup = table
        self._longest = max(map(len, table), default=1)
        self.unk_id = unk_id
        self._unk_score = min(float(s) for s in scores) - UNK_PENALTY

    @classmethod
    def from_lookup(cls, lookup: PieceLookup, longest: int, min_score: float, unk_id: int) -> UnigramSegmenter:
        """A segmenter over pieces that ``lookup`` finds (at most ``longest`` characters, none scored below
        ``min_score``)."""
        segmenter = cls.__new__(cls)
        segmenter._pieces, segmenter._longest, segmenter.unk_id = lookup, longest, unk_id
        segmenter._unk_score = min_score - UNK_PENALTY
        return segmenter

    def encode(self, text: str) -> list[int]:
        """The ids of the best segmentation of ``text`` (already normalised, spaces as ▁)."""
        n = len(text)
        if n == 0:
            return []
        neg = float("-inf")
        best = [0.0] + [neg] * n
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)  # end -> (start, id)
        pieces, unk = self._pieces, self.unk_id
        for start in range(n):
            base = best[start]
            single = False
            for end in range(start + 1, min(n, start + self._longest) + 1):
                hit = pieces.get(text[start:end])
                if hit is None:
                    continue
                single = single or end == start + 1
                score = base + hit[1]
                if score > best[end]:
                    best[end] = score
                    back[end] = (start, hit[0])
            if not single and base + self._unk_score > best[start + 1]:
                best[start + 1] = base + self._unk_score
                back[start + 1] = (start, unk)
        ids: list[int] = []
        end = n
        while end > 0:
            start, piece = back[end]
            if not (piece == unk and ids and ids[-1] == unk):  # consecutive unknowns become one
                ids.append(piece)
            end = start
        ids.reverse()
        return ids
