"""Chunking: sentence boundaries, sizes, overlap, offsets that point back into the text."""

from __future__ import annotations

import itertools

from lorag.rag.chunking import chunk_text, is_markdown_heading, split_segments

JA = "東京は日本の首都です。人口は約1400万人です！本当ですか？はい、本当です。"


def test_sentence_segments() -> None:
    spans = [JA[s.start : s.end] for s in split_segments(JA, 400)]
    assert spans == ["東京は日本の首都です。", "人口は約1400万人です！", "本当ですか？", "はい、本当です。"]


def test_english_sentences_and_decimals() -> None:
    text = "Pi is 3.14 roughly. Is it? Yes! Done"
    assert [text[s.start : s.end].strip() for s in split_segments(text, 400)] == [
        "Pi is 3.14 roughly.", "Is it?", "Yes!", "Done"]


def test_small_text_is_one_chunk() -> None:
    [chunk] = chunk_text(JA, chunk_chars=400, overlap_chars=80)
    assert (chunk.text, chunk.start, chunk.end, chunk.page) == (JA, 0, len(JA), None)


def test_offsets_point_back_and_sizes_hold() -> None:
    body = "経費は翌月10日までに申請してください。領収書を添付します。" * 30
    text = "# 規程\n\n" + body + "\n\n## 付則\n\n施行日は4月1日です。\n"
    chunks = chunk_text(text, chunk_chars=100, overlap_chars=30, page=3)
    assert len(chunks) > 5
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert len(c.text) <= 100
        assert c.page == 3
    covered = set().union(*(range(c.start, c.end) for c in chunks))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_chunks_end_at_sentence_ends_and_overlap_by_sentences() -> None:
    text = "経費は翌月10日までに申請してください。" * 20  # 20 sentences of 20 characters
    chunks = chunk_text(text, chunk_chars=100, overlap_chars=30)
    assert all(c.text.endswith("。") for c in chunks)
    for a, b in itertools.pairwise(chunks):
        assert b.start == a.end - 20  # exactly one sentence repeated
    assert chunks[0].text == text[:100]


def test_heading_starts_a_new_chunk() -> None:
    text = "# 休暇\n\n有給休暇は10日です。申請は2週間前までです。\n\n# 食堂\n\n食堂は11時から営業します。"
    chunks = chunk_text(text, chunk_chars=400, overlap_chars=50, markdown=True)
    assert [c.text for c in chunks] == ["# 休暇\n\n有給休暇は10日です。申請は2週間前までです。",
                                        "# 食堂\n\n食堂は11時から営業します。"]


def test_long_sentence_is_cut_at_commas() -> None:
    text = "、".join(["これは長い節です"] * 40) + "。"
    chunks = chunk_text(text, chunk_chars=100, overlap_chars=20)
    assert all(len(c.text) <= 100 for c in chunks)
    assert all(c.text.endswith(("、", "。")) for c in chunks)
    assert "".join(text[c.start : c.end] for c in chunks).count("これは長い節です") >= 40


def test_english_text_chunks_at_sentences() -> None:
    text = " ".join(f"Sentence number {i} talks about Debian packages." for i in range(30))
    chunks = chunk_text(text, chunk_chars=200, overlap_chars=60)
    assert len(chunks) >= 8
    assert all(c.text.endswith(".") and c.text[0].isupper() for c in chunks)


def test_whitespace_only_gives_no_chunks() -> None:
    assert chunk_text(" \n\n \n", 100, 10) == []


def test_markdown_heading_must_read_like_one() -> None:
    assert [is_markdown_heading(line) for line in ("# 休暇規程", "## Installing Debian", "# cd /etc", "# gitk",
                                                   "# apt-get install vim", "# ls -la", "#no space")] == [
        True, True, False, False, False, False, False]


def test_root_prompt_is_never_a_heading_in_plain_text() -> None:
    text = "設定ファイルを編集します。次のコマンドを実行します。\n# cd /etc\n# gitk\nこれで完了です。"
    for markdown in (False, True):
        assert [c.text for c in chunk_text(text, chunk_chars=400, overlap_chars=50, markdown=markdown)] == [text]


def test_markdown_heading_in_a_code_fence_is_code() -> None:
    text = "# 手順\n\n説明です。\n\n```\n# Comment in a script\necho hi\n```\n"
    chunks = chunk_text(text, chunk_chars=400, overlap_chars=50, markdown=True)
    assert [c.text for c in chunks] == [text.strip()]


def test_plain_text_hash_line_does_not_start_a_chunk() -> None:
    text = "# 休暇\n\n有給休暇は10日です。申請は2週間前までです。\n\n# 食堂\n\n食堂は11時から営業します。"
    assert len(chunk_text(text, chunk_chars=400, overlap_chars=50, markdown=True)) == 2
    assert [c.text for c in chunk_text(text, chunk_chars=400, overlap_chars=50)] == [text]


def test_short_chunks_merge_into_a_neighbour() -> None:
    text = "# 休暇\n\n有給休暇は10日です。\n\n# 食堂\n\n食堂は11時から営業します。メニューは毎週更新されます。"
    plain = chunk_text(text, chunk_chars=400, overlap_chars=50, markdown=True)
    assert [len(c.text) for c in plain] == [17, 34]
    merged = chunk_text(text, chunk_chars=400, overlap_chars=50, markdown=True, min_chunk_chars=20)
    assert [(c.start, c.end) for c in merged] == [(0, len(text))]
    assert merged[0].text == text


def test_short_last_chunk_merges_into_the_previous() -> None:
    text = "経費は翌月10日までに申請してください。領収書を添付します。\n\n# 付則\n\n以上。"
    chunks = chunk_text(text, chunk_chars=400, overlap_chars=0, markdown=True, min_chunk_chars=15)
    assert [c.text for c in chunks] == [text]
