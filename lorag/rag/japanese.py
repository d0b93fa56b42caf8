"""Morpheme tokenizers for BM25: content words in dictionary form, so 行きました and 行く match.

Usage::

    tokenize("東京都に行きました", "sudachi")   # ['東京', '都', '行く']
    tokenize("Installing Debian packages")    # ['installing', 'debian', 'packages']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

from lorag.errors import ConfigError

# Parts of speech that carry no topic: particles, auxiliaries, punctuation and whitespace.
_DROP_POS = frozenset({"助詞", "助動詞", "補助記号", "空白", "記号"})
_PUNCT_ONLY = re.compile(r"^[\W_]+$")
# Sudachi refuses inputs over ~49 KB; cut long texts at line ends well below that.
_MAX_PIECE_CHARS = 4000
TOKENIZERS = ("sudachi", "fugashi", "whitespace")


def tokenize(text: str, kind: str = "sudachi") -> list[str]:
    """Content-word tokens of ``text`` with the named tokenizer (sudachi, fugashi or whitespace)."""
    return _tokenizer(kind)(text)


def tokenize_many(texts: Iterable[str], kind: str = "sudachi") -> list[list[str]]:
    """Tokenize each text of ``texts``."""
    fn = _tokenizer(kind)
    return [fn(t) for t in texts]


def whitespace_tokens(text: str) -> list[str]:
    """The naive baseline most RAG systems use: lowercase, split on whitespace."""
    return text.lower().split()


def _tokenizer(kind: str) -> Callable[[str], list[str]]:
    if kind == "sudachi":
        return _sudachi_tokens
    if kind == "fugashi":
        return _fugashi_tokens
    if kind == "whitespace":
        return whitespace_tokens
    raise ConfigError(f"unknown tokenizer {kind!r}; choose one of {', '.join(TOKENIZERS)}.")


@functools.cache
def _sudachi() -> tuple[Any, Any]:
    """The process-wide Sudachi tokenizer (dictionary loading takes a while) and split mode A."""
    from sudachipy import Dictionary, SplitMode

    return Dictionary(dict="core").tokenizer(mode=SplitMode.A), SplitMode.A


@functools.cache
def _fugashi() -> Any:
    """The process-wide MeCab tagger with unidic-lite."""
    import fugashi

    return fugashi.Tagger()


def _sudachi_tokens(text: str) -> list[str]:
    tok, mode = _sudachi()
    out: list[str] = []
    for piece in _pieces(text):
        for m in tok.tokenize(piece, mode):
            if m.part_of_speech()[0] not in _DROP_POS:
                surface = m.surface()
                # Sudachi "normalises" English words into katakana (the → ザ); keep ASCII words as written.
                _keep(out, surface if surface.isascii() else m.normalized_form())
    return out


def _fugashi_tokens(text: str) -> list[str]:
    tagger = _fugashi()
    out: list[str] = []
    for piece in _pieces(text):
        for word in tagger(piece):
            if word.feature.pos1 in _DROP_POS:
                continue
            base = getattr(word.feature, "orthBase", None)
            _keep(out, base if base and base != "*" and not word.surface.isascii() else word.surface)
    return out


def _keep(out: list[str], token: str) -> None:
    token = token.strip().lower()
    if token and not _PUNCT_ONLY.match(token):
        out.append(token)


def _pieces(text: str) -> Iterable[str]:
    """Cut ``text`` into pieces short enough for the morphological analysers."""
    while len(text) > _MAX_PIECE_CHARS:
        cut = text.rfind("\n", 0, _MAX_PIECE_CHARS)
        cut = cut if cut > 0 else _MAX_PIECE_CHARS
        yield text[:cut]
        text = text[cut:]
    if text.strip():
        yield text
