"""Where the behaviour score's held-out prompts come from, and how each line becomes a prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorag.build.eval_prompts import GENERIC_PROMPTS, find_eval_prompts, read_eval_file
from lorag.errors import BuildError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _adapter(root: Path) -> Path:
    adapter = root / "outputs" / "lora_x"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    return adapter


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


class _Tokenizer:
    """Just enough of a tokenizer: no chat template (a base model's fine-tune)."""

    chat_template = None


def test_without_evaluation_lines_the_generic_set_is_used_and_says_so(tmp_path: Path) -> None:
    prompts = find_eval_prompts(_adapter(tmp_path))
    assert prompts.generic and prompts.source == "generic"
    assert prompts.label == "generic built-in prompts (no evaluation lines found)"
    assert prompts.lines == list(GENERIC_PROMPTS) and len(prompts.lines) <= 8


def test_eval_file_inside_or_beside_the_adapter_is_found(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path)
    _jsonl(adapter.parent / "train.jsonl", [{"prompt": "training line"}])  # training data is not held out
    beside = _jsonl(adapter.parent / "eval_qa.jsonl", [{"prompt": "P1"}, {"question": "Q2"}])
    prompts = find_eval_prompts(adapter)
    assert prompts.source == str(beside)
    assert prompts.texts(_Tokenizer()) == ["P1", "質問：Q2\n答え："]
    inside = _jsonl(adapter / "validation.jsonl", [{"prompt": "inside"}])
    assert find_eval_prompts(adapter).source == str(inside)


def test_file_named_in_the_training_config_wins(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path)
    _jsonl(adapter.parent / "eval.jsonl", [{"prompt": "beside"}])
    named = _jsonl(tmp_path / "outputs" / "held.jsonl", [{"prompt": "named"}])
    (adapter / "training_config.json").write_text(json.dumps({"eval_file": "held.jsonl"}), encoding="utf-8")
    assert find_eval_prompts(adapter).source == str(named)


def test_file_named_in_the_readme_is_found(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path)
    data = tmp_path / "outputs" / "data"
    data.mkdir()
    named = _jsonl(data / "my_test_split.jsonl", [{"prompt": "from readme"}])
    (adapter / "README.md").write_text("Evaluated on `data/my_test_split.jsonl`.\n", encoding="utf-8")
    assert find_eval_prompts(adapter).source == str(named)


def test_explicit_file_wins_and_a_missing_one_is_a_clear_error(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path)
    _jsonl(adapter / "eval.jsonl", [{"prompt": "found"}])
    mine = tmp_path / "mine.txt"
    mine.write_text("first prompt\n\nsecond prompt\n", encoding="utf-8")
    prompts = find_eval_prompts(adapter, mine)
    assert prompts.source == str(mine) and prompts.lines == ["first prompt", "second prompt"]
    with pytest.raises(BuildError, match=r"eval prompts file .*nope\.jsonl does not exist"):
        find_eval_prompts(adapter, tmp_path / "nope.jsonl")


def test_line_formats(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "eval.jsonl", [
        {"prompt": "raw prompt"},
        {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
                      {"role": "assistant", "content": "hello"}, {"role": "user", "content": "again"},
                      {"role": "assistant", "content": "answer to drop"}]},
        {"conversations": [{"from": "human", "value": "sharegpt"}, {"from": "gpt", "value": "x"}]},
        {"instruction": "翻訳して", "input": "cat"},
        {"text": "a whole training text"},  # no prompt in it: skipped
        {"messages": [{"role": "assistant", "content": "no user turn"}]},
    ])
    prompts = read_eval_file(path)
    assert prompts.skipped == 2
    assert prompts.texts(_Tokenizer()) == [
        "raw prompt",
        "質問：hi\n答え：hello\n質問：again\n答え：",
        "質問：sharegpt\n答え：",
        "質問：翻訳して\n\ncat\n答え：",
    ]


def test_chat_template_renders_user_turns() -> None:
    from tests.helpers.tiny import qwen2_tokenizer

    tokenizer = qwen2_tokenizer()
    tokenizer.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    prompts = find_eval_prompts(Path("/nonexistent"), None)
    prompts.lines = [[{"role": "user", "content": "hi"}]]
    assert prompts.texts(tokenizer) == ["<user>hi<assistant>"]


def test_broken_json_line_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_text('{"prompt": "ok"}\n{broken\n', encoding="utf-8")
    with pytest.raises(BuildError, match=r"line 2 of eval prompts file .* is not JSON"):
        read_eval_file(path)


def test_the_bundled_adapter_has_its_own_held_out_lines() -> None:
    prompts = find_eval_prompts(EXAMPLES / "adapter")
    assert prompts.source == str(EXAMPLES / "eval_qa.jsonl")
    assert len(prompts.lines) == 8 and prompts.skipped == 0
    train = {json.loads(line)["question"] for line in (EXAMPLES / "train_qa.jsonl").read_text("utf-8").splitlines()}
    rows = [json.loads(line) for line in (EXAMPLES / "eval_qa.jsonl").read_text("utf-8").splitlines()]
    assert all(r["prompt"].endswith(f"質問：{r['question']}\n答え：") for r in rows)
    assert not train & {r["question"] for r in rows}


def test_with_roots_a_file_outside_them_is_passed_over(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path)
    secret = _jsonl(tmp_path / "elsewhere.jsonl", [{"prompt": "not for the server"}])
    (adapter / "training_config.json").write_text(json.dumps({"eval_file": str(secret)}), encoding="utf-8")
    assert find_eval_prompts(adapter).source == str(secret)  # the command line may read it
    over_http = find_eval_prompts(adapter, roots=(adapter.parent,))
    assert over_http.generic


def test_a_huge_eval_file_is_read_only_as_far_as_needed(tmp_path: Path) -> None:
    from lorag.build.eval_prompts import MAX_READ_BYTES

    lines = tmp_path / "valid.jsonl"
    row = json.dumps({"prompt": "有給休暇は何日ですか？" + "。" * 200}, ensure_ascii=False) + "\n"
    lines.write_text(row * (MAX_READ_BYTES // len(row.encode()) + 50), encoding="utf-8")
    prompts = read_eval_file(lines)
    assert prompts.lines and all(line == json.loads(row)["prompt"] for line in prompts.lines)
    assert prompts.skipped == 0  # cut at a line end: no half line
    listed = tmp_path / "valid.json"
    listed.write_text("[" + ",".join(['{"prompt": "x"}'] * (MAX_READ_BYTES // 15 + 10)) + "]", encoding="utf-8")
    with pytest.raises(BuildError, match=r"is a JSON list over 4 MB"):
        read_eval_file(listed)
