"""Morpheme tokenizers for BM25."""

from __future__ import annotations

import pytest

from lorag.errors import ConfigError
from lorag.rag.japanese import tokenize, tokenize_many, whitespace_tokens


def test_sudachi_content_words_in_normalised_form() -> None:
    assert tokenize("東京都に行きました。", "sudachi") == ["東京", "都", "行く"]


def test_sudachi_normalises_spelling_variants() -> None:
    assert tokenize("シュミレーション", "sudachi") == tokenize("シミュレーション", "sudachi")


def test_fugashi_content_words() -> None:
    assert tokenize("東京都に行きました。", "fugashi") == ["東京", "都", "行く"]


@pytest.mark.parametrize("kind", ["sudachi", "fugashi"])
def test_english_passes_through_lowercased(kind: str) -> None:
    assert tokenize("Installing the Debian packages!", kind) == ["installing", "the", "debian", "packages"]


def test_mixed_text_and_long_input() -> None:
    text = "Debian パッケージをインストールする。\n" * 500  # longer than Sudachi's input limit
    tokens = tokenize(text, "sudachi")
    assert tokens[:3] == ["debian", "パッケージ", "インストール"]
    assert tokens.count("debian") == 500


def test_tokenize_many_and_whitespace_baseline() -> None:
    assert tokenize_many(["猫が好き", "犬"], "sudachi") == [["猫", "好き"], ["犬"]]
    assert whitespace_tokens("Debian パッケージを 入れる") == ["debian", "パッケージを", "入れる"]


def test_unknown_tokenizer() -> None:
    with pytest.raises(ConfigError, match="unknown tokenizer 'mecab'"):
        tokenize("x", "mecab")
