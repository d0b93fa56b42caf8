"""Japanese-aware chunking: split at sentence ends and line structure, pack into overlapping chunks.

Every chunk keeps its character offsets into the page text, so ``text[start:end] == chunk.text``.

Usage::

    for chunk in chunk_text(page.text, chunk_chars=400, overlap_chars=80, page=page.number):
        print(chunk.page, chunk.start, chunk.end, chunk.text[:20])

A ``# `` line starts a section only in Markdown (``markdown=True``) and only when it reads like a heading:
in a PDF or a text file ``# cd /etc`` is a root shell prompt. Chunks shorter than ``min_chunk_chars`` are
merged into a neighbour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends at 。！？!? (and a full stop followed by space), plus any closing brackets or quotes;
# a line break always ends a segment so headings and list items stay separate.
_SEGMENT = re.compile(
    r"""[^\n]*?(?:[。！？!?]+[」』）)"'”’]*|\.(?=\s)[」』）)"'”’]*|(?=\n)|$)""",
)
_HEADING = re.compile(r"^\s*第[0-9一二三四五六七八九十百]+[章節](?:\s|$)")
_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(\S.*?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")
# What a shell command line has and a heading does not: paths, options, pipes, redirections, assignments.
_SHELL_LIKE = re.compile(r"(?:^|\s)(?:-{1,2}\w|/|~/|\./)|[|<>$=;&`\\]|^(?:[a-z][\w.+-]*)(?:\s+[\w.+/:-]+)*$")
MAX_HEADING_CHARS = 100
_NUMBERED = re.compile(r"^\s*(?:第[0-9一二三四五六七八九十百]+条|[0-9]+(?:\.[0-9]+)*[.)]?\s)")
_SOFT_BREAKS = "、,;；:： \t"


@dataclass(frozen=True)
class TextChunk:
    """A piece of a page: its text and where it sits (``start``/``end`` index the page text)."""

    text: str
    start: int
    end: int
    page: int | None = None


@dataclass(frozen=True)
class _Segment:
    start: int
    end: int
    # 2: a heading (always begins a chunk); 1: a new paragraph (begins one if the current chunk is not tiny)
    heading: int = 0

    @property
    def length(self) -> int:
        return self.end - self.start


def is_markdown_heading(line: str) -> bool:
    """True when ``line`` is an ATX heading that reads like one (``# 休暇規程``), not a prompt (``# cd /etc``)."""
    match = _MD_HEADING.match(line)
    if match is None:
        return False
    title = match.group(2)
    return len(title) <= MAX_HEADING_CHARS and not _SHELL_LIKE.search(title)


def _markdown_headings(text: str) -> set[int]:
    """Offsets of the lines of ``text`` that are Markdown headings (fenced code blocks excluded)."""
    found: set[int] = set()
    offset, fenced = 0, False
    for line in text.split("\n"):
        if _MD_FENCE.match(line):
            fenced = not fenced
        elif not fenced and is_markdown_heading(line):
            found.add(offset)
        offset += len(line) + 1
    return found


def split_segments(text: str, max_chars: int, markdown: bool = False) -> list[_Segment]:
    """Split ``text`` into sentence/line segments no longer than ``max_chars`` (whitespace-only dropped)."""
    segments: list[_Segment] = []
    headings = _markdown_headings(text) if markdown else set()
    for match in _SEGMENT.finditer(text):
        start, end = match.span()
        piece = text[start:end]
        if not piece.strip():
            continue
        line_start = start == 0 or text[start - 1] == "\n"
        heading = 0
        if line_start:
            if _HEADING.match(piece) or start in headings:
                heading = 2
            elif _NUMBERED.match(piece) or _after_blank_line(text, start):
                heading = 1
        segments.extend(_split_long(text, _Segment(start, end, heading), max_chars))
    return segments


def _after_blank_line(text: str, start: int) -> bool:
    """True at the start of the text or of a paragraph (an empty line before ``start``)."""
    before = text[max(0, start - 40) : start]
    gap = before[len(before.rstrip()) :]
    return len(gap) == start or gap.count("\n") >= 2


def _split_long(text: str, seg: _Segment, max_chars: int) -> list[_Segment]:
    """Cut a segment longer than ``max_chars``, preferring a comma or space near the limit."""
    pieces: list[_Segment] = []
    start, heading = seg.start, seg.heading
    while seg.end - start > max_chars:
        cut = start + max_chars
        window = text[start + max_chars // 2 : cut]
        soft = max(window.rfind(ch) for ch in _SOFT_BREAKS)
        if soft >= 0:
            cut = start + max_chars // 2 + soft + 1
        pieces.append(_Segment(start, cut, heading))
        start, heading = cut, 0
    pieces.append(_Segment(start, seg.end, heading))
    return pieces


def chunk_text(text: str, chunk_chars: int = 400, overlap_chars: int = 80, page: int | None = None, *,
               markdown: bool = False, min_chunk_chars: int = 0) -> list[TextChunk]:
    """Pack sentence segments into chunks of at most ``chunk_chars`` with about ``overlap_chars`` overlap."""
    overlap_chars = min(overlap_chars, chunk_chars // 2)
    segments = split_segments(text, chunk_chars, markdown)
    chunks: list[TextChunk] = []
    current: list[_Segment] = []
    for seg in segments:
        size = seg.end - current[0].start if current else seg.length
        starts_section = bool(current) and (
            seg.heading == 2 or (seg.heading == 1 and current[-1].end - current[0].start >= chunk_chars // 4))
        if current and (size > chunk_chars or starts_section):
            chunks.append(_make_chunk(text, current, page))
            current = [] if starts_section else _overlap(text, current, overlap_chars, chunk_chars - seg.length)
        current.append(seg)
    if current:
        chunks.append(_make_chunk(text, current, page))
    return merge_short([c for c in chunks if c.text], text, min_chunk_chars)


def merge_short(chunks: list[TextChunk], text: str, min_chars: int) -> list[TextChunk]:
    """Merge every chunk shorter than ``min_chars`` into its next neighbour (the last one into the previous)."""
    if min_chars <= 0 or len(chunks) < 2:
        return chunks
    out: list[TextChunk] = []
    pending: TextChunk | None = None
    for chunk in chunks:
        if pending is not None:
            chunk = _span(text, pending.start, max(chunk.end, pending.end), chunk.page)
            pending = None
        if len(chunk.text) < min_chars:
            pending = chunk
        else:
            out.append(chunk)
    if pending is not None:
        if out:
            out[-1] = _span(text, out[-1].start, max(out[-1].end, pending.end), pending.page)
        else:
            out.append(pending)
    return out


def _span(text: str, start: int, end: int, page: int | None) -> TextChunk:
    return TextChunk(text[start:end], start, end, page)


def _overlap(text: str, segments: list[_Segment], overlap_chars: int, room: int) -> list[_Segment]:
    """The tail of the previous chunk to repeat: whole sentences when they fit, else the last characters."""
    budget = min(overlap_chars, room)
    if budget <= 0:
        return []
    tail: list[_Segment] = []
    end = segments[-1].end
    for seg in reversed(segments):
        if end - seg.start > budget:
            break
        tail.insert(0, seg)
    if tail:
        return tail
    # No whole sentence fits: fall back to a character overlap, started after a space when possible.
    start = end - budget
    space = text.find(" ", start, end)
    if 0 <= space < end - 1 and space - start < budget // 2:
        start = space + 1
    return [_Segment(start, end)]


def _make_chunk(text: str, segments: list[_Segment], page: int | None) -> TextChunk:
    """A chunk spanning ``segments``, with surrounding whitespace trimmed and offsets adjusted."""
    start, end = segments[0].start, segments[-1].end
    raw = text[start:end]
    lead = len(raw) - len(raw.lstrip())
    trail = len(raw) - len(raw.rstrip())
    return TextChunk(raw.strip(), start + lead, end - trail, page)
