"""Front and back matter: contents, lists of tables and figures, and index pages, found by their shape.

Such pages quote headings next to page numbers; in retrieval they take the places of the pages they point
to. ``ingest.skip_toc`` leaves them out of the index; the document's metadata still lists them.

Usage::

    kind = matter_kind(page_text)     # "contents", "index" or None
"""

from __future__ import annotations

import re

_CONTENTS_HEADING = re.compile(
    r"^\s*(?:目\s*次|表\s*目\s*次|図\s*目\s*次|表一覧|図一覧|(?:table\s+of\s+)?contents|list\s+of\s+(?:tables|figures|"
    r"examples|listings))\s*$", re.IGNORECASE)
_INDEX_HEADING = re.compile(r"^\s*(?:索\s*引|index)\s*$", re.IGNORECASE)
# "1.2 Title . . . . . 15" or "Title ……… 15" or "Title ・・・ 15"
_DOT_LEADER = re.compile(r"(?:(?:\.\s?){4,}|…{2,}|・{3,}|‥{2,}|·(?:\s?·){3,})\s*[0-9ivxlcdmIVXLCDM]+\s*$")
_ENDS_WITH_PAGE = re.compile(r"\S.*?\s[0-9ivxlcdmIVXLCDM]{1,5}\s*$")
_INDEX_ENTRY = re.compile(r"\S.*?[,、\s]\s*\d{1,4}(?:\s*[,、–-]\s*\d{1,4})*\s*$")
MIN_LINES = 3


def matter_kind(text: str) -> str | None:
    """``"contents"`` or ``"index"`` when the page looks like one, else None (an ordinary page)."""
    lines = [line for line in (raw.strip() for raw in text.split("\n")) if line]
    if not lines:
        return None
    head = lines[:3]
    if any(_CONTENTS_HEADING.match(line) for line in head) and _share(lines, _ENDS_WITH_PAGE) >= 0.3:
        return "contents"
    if any(_INDEX_HEADING.match(line) for line in head) and _share(lines, _INDEX_ENTRY) >= 0.3:
        return "index"
    if len(lines) < MIN_LINES:
        return None
    if _share(lines, _DOT_LEADER) >= 0.5:
        return "contents"
    return None


def _share(lines: list[str], pattern: re.Pattern[str]) -> float:
    return sum(1 for line in lines if pattern.search(line)) / len(lines)
