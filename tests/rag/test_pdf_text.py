"""Page text cleanup and front matter detection, on lines shaped like the Japanese Debian Reference's."""

from __future__ import annotations

from lorag.rag.frontmatter import matter_kind
from lorag.rag.pagetext import clean_page_text, collapse_spaced_characters, drop_running_headers, join_lines

WIDE = "本 Debian リファレンス (第 2.100 版) はシステムインストール後のユーザー案内書として、"


def test_japanese_words_broken_across_lines_are_rejoined_without_a_space() -> None:
    text = (WIDE + "\nDebian システムの広範な概論を提供します。本書は非開発者を対象にシェルコマンド例を通して多"
            "\nくの局面を説明します。\n短い行です")
    assert clean_page_text(text) == (
        WIDE + "Debian システムの広範な概論を提供します。本書は非開発者を対象にシェルコマンド例を通して多くの局面を"
        "説明します。\n短い行です")


def test_english_is_dehyphenated_and_joined_with_a_space() -> None:
    assert join_lines("free soft-", "ware") == "free software"
    assert join_lines("the exact distribution", "terms") == "the exact distribution terms"
    assert join_lines("use the --", "help option") == "use the -- help option"
    assert join_lines("ポ", "プコン") == "ポプコン"


def test_short_lines_bullets_and_sentence_ends_keep_their_breaks() -> None:
    text = ("とても長い一行目の文章がここにありますがまだ終わりませんので次の行へと続いていきます。\n"
            "• 箇条書きの項目\n"
            "とても長い三行目の文章がここにありますがまだ終わりませんので次の行へと続いていきます、\n"
            "1.1 見出し")
    assert clean_page_text(text) == text


def test_per_character_justification_spaces_collapse() -> None:
    assert collapse_spaced_characters("これは パ ッ ケ ー ジ です 青木 修") == "これは パッケージ です 青木 修"
    assert collapse_spaced_characters("有 給 休 暇 は 10 日 です。", everywhere=True) == "有給休暇は 10 日です。"


def test_running_headers_and_page_numbers_are_dropped() -> None:
    pages = [f"Debian リファレンス {n} / 244\n本文 {n} ページ目です。" for n in range(1, 5)]
    pages.append("Debian リファレンス xii\n序文です。")
    assert drop_running_headers(pages) == [f"本文 {n} ページ目です。" for n in range(1, 5)] + ["序文です。"]
    assert drop_running_headers(pages[:2]) == pages[:2]  # too few pages to tell a header


def test_contents_pages_are_found_by_dot_leaders() -> None:
    page = "\n".join(f"9.{i} コマンドのリスト . . . . . . . . . . . . . . . . {150 + i}" for i in range(12))
    assert matter_kind(page) == "contents"
    assert matter_kind("目次\n1 はじめに 1\n2 インストール 5\n3 設定 9") == "contents"
    assert matter_kind("Contents\nIntroduction 1\nInstalling xii") == "contents"


def test_index_pages_are_found_by_heading_and_page_numbers() -> None:
    assert matter_kind("索引\napt, 12, 45\naptitude, 13\ndpkg 20-22\nsudo, 3") == "index"


def test_ordinary_pages_are_not_front_matter() -> None:
    assert matter_kind("1.1 コンソールの基礎\nシステムを起動すると文字ベースのログイン画面が表示されます。") is None
    assert matter_kind("コマンド 説明\ncommand & バックグラウンド実行 1\ncommand1 | command2 パイプ") is None
    assert matter_kind("") is None
