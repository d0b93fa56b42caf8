"""Clean text extracted from PDF pages and OCR: rejoin wrapped lines, undo justification, drop running headers.

Usage::

    pages = drop_running_headers(["Manual 1 / 9\\n本文…", "Manual 2 / 9\\n…"])
    text = clean_page_text("ポ\\nプコンは人気の指標で\\nす。")      # 'ポプコンは人気の指標です。' when lines are full
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

# A line ending like this closes a sentence or a label: the next line starts something new.
_CLOSERS = frozenset("。．.:：!?！？」』)）]】")
_BULLET = re.compile(r"^\s*(?:[•・●○◆■□▪‣∙*–—-]\s|\d+(?:\.\d+)*[.)]?\s|\(\d+\)|[①-⑳]|第\d+[章節条])")
_CJK_CLASS = "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_SPACED_RUN = re.compile(f"(?<!\\S)(?:[{_CJK_CLASS}] ){{2,}}[{_CJK_CLASS}](?!\\S)")
_NUMBERISH = re.compile(r"\b(?:\d+|[ivxlcdm]+|[IVXLCDM]+)\b|[/|]|\bof\b|-")
FULL_LINE = 0.8  # a line at least this share of the page's longest line is treated as wrapped
MIN_WRAP_WIDTH = 40  # pages whose longest line is shorter than this (columns) hold no wrapped prose


def is_cjk(ch: str) -> bool:
    """True for kana, kanji, CJK punctuation and full-width forms (characters Japanese writes without spaces)."""
    code = ord(ch)
    return (0x3000 <= code <= 0x30FF or 0x3400 <= code <= 0x4DBF or 0x4E00 <= code <= 0x9FFF
            or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF or 0x20000 <= code <= 0x2FA1F)


def display_width(text: str) -> int:
    """Columns a line takes when printed: wide (CJK) characters count twice."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def collapse_spaced_characters(line: str, everywhere: bool = False) -> str:
    """Remove justification spaces (``パ ッ ケ ー ジ`` → ``パッケージ``); with ``everywhere``, every space
    between two CJK characters goes (Tesseract separates Japanese characters with spaces)."""
    line = _SPACED_RUN.sub(lambda m: m.group(0).replace(" ", ""), line)
    if everywhere:
        line = re.sub(r"(?<=[^\x00-\x7f]) +(?=[^\x00-\x7f])",
                      lambda m: "" if _both_cjk(line, m.start(), m.end()) else m.group(0), line)
    return line


def _both_cjk(line: str, start: int, end: int) -> bool:
    return start > 0 and end < len(line) and is_cjk(line[start - 1]) and is_cjk(line[end])


def join_lines(previous: str, line: str) -> str:
    """Join a wrapped line to the one before it: no space in Japanese, de-hyphenated English, else a space."""
    if not previous:
        return line
    a, b = previous[-1], line[0]
    if a == "-" and len(previous) > 1 and previous[-2].isalpha() and b.islower():
        return previous[:-1] + line
    if is_cjk(a) or is_cjk(b):
        return previous + line
    return previous + " " + line


def clean_page_text(text: str, ocr: bool = False) -> str:
    """Rejoin lines that wrap at the page's full width and undo per-character spacing; keep real breaks."""
    lines = [collapse_spaced_characters(" ".join(raw.split()), everywhere=ocr) for raw in text.split("\n")]
    widest = max((display_width(line) for line in lines), default=0)
    out: list[str] = []
    wrapped = False
    for line in lines:
        if wrapped and line and not _BULLET.match(line):
            out[-1] = join_lines(out[-1], line)
        else:
            out.append(line)
        current = out[-1]
        wrapped = (bool(current) and widest >= MIN_WRAP_WIDTH and display_width(line) >= FULL_LINE * widest
                   and current[-1] not in _CLOSERS)
    return _squeeze_blank_lines(out)


def _squeeze_blank_lines(lines: list[str]) -> str:
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip()


def drop_running_headers(pages: Sequence[str], min_pages: int = 4) -> list[str]:
    """Remove first/last lines repeated on most pages (page numbers aside): running headers and footers."""
    if len(pages) < min_pages:
        return list(pages)
    split = [page.strip("\n").split("\n") for page in pages]
    firsts = Counter(_shape(lines[0]) for lines in split if lines and lines[0].strip())
    lasts = Counter(_shape(lines[-1]) for lines in split if len(lines) > 1 and lines[-1].strip())
    limit = len(pages) // 2
    heads = {shape for shape, n in firsts.items() if n > limit}
    feet = {shape for shape, n in lasts.items() if n > limit}
    out = []
    for lines in split:
        if lines and _shape(lines[0]) in heads:
            lines = lines[1:]
        if len(lines) > 1 and _shape(lines[-1]) in feet:
            lines = lines[:-1]
        out.append("\n".join(lines))
    return out


def _shape(line: str) -> str:
    """A line without its page numbers (arabic or roman, "3 / 244"), so every page's header looks alike."""
    return " ".join(_NUMBERISH.sub(" ", line).split())
