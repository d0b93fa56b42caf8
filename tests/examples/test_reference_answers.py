"""The demo's remembered fine-tune answers: a rerun reads them without loading the model, and says the same."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lorag.generate.base import GenerationRequest, complete

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))


def test_answers_are_read_back_without_the_model_and_finished_by_it_when_cut(tiny_qwen2: Path,
                                                                             tiny_qwen2_adapter: Path,
                                                                             tmp_path: Path) -> None:
    from reference_answers import CachedReference

    path = tmp_path / "reference-answers.json"
    greedy = GenerationRequest(prompt="日本の首都は", max_tokens=8, temperature=0.0)
    first = CachedReference(tiny_qwen2, tiny_qwen2_adapter, path)
    text = complete(first, greedy)
    assert (first.hits, first.loaded, first.known()) == (0, True, 1)
    usage = (first.usage.prompt_tokens, first.usage.completion_tokens)
    first.close()

    again = CachedReference(tiny_qwen2, tiny_qwen2_adapter, path)
    assert complete(again, greedy) == text
    assert (again.hits, again.loaded) == (1, False)
    assert (again.usage.prompt_tokens, again.usage.completion_tokens) == usage
    # A sampled request is answered by the model and not remembered.
    complete(again, GenerationRequest(prompt="日本の首都は", max_tokens=4, temperature=0.7, seed=1))
    assert (again.hits, again.loaded, again.known()) == (1, True, 1)

    # A reader that stops early (as the demo's answer cut does) leaves the part it read, marked incomplete;
    # a reader that wants the whole answer gets the model to finish it.
    longer = GenerationRequest(prompt="日本の首都は", max_tokens=12, temperature=0.0)
    stream = again.stream(longer)
    head = next(stream)
    stream.close()
    entries = json.loads(path.read_text(encoding="utf-8"))
    assert sorted((e["text"], e["complete"]) for e in entries.values()) == sorted([(text, True), (head, False)])
    whole = complete(again, longer)
    assert whole.startswith(head) and whole.startswith(text)  # greedy: the 8-token answer begins the 12-token one
    assert again.hits == 1 and again.known() == 2
    entries = json.loads(path.read_text(encoding="utf-8"))
    assert sorted((e["text"], e["complete"]) for e in entries.values()) == sorted([(text, True), (whole, True)])
    again.close()


def test_a_damaged_answers_file_is_only_a_miss(tiny_qwen2: Path, tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    from reference_answers import CachedReference

    path = tmp_path / "reference-answers.json"
    for damaged in ("{not json", "[1, 2]", ""):
        path.write_text(damaged, encoding="utf-8")
        reference = CachedReference(tiny_qwen2, tiny_qwen2_adapter, path)
        assert reference.known() == 0 and not reference.loaded  # nothing read from it, no model loaded for it
        reference.close()
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert CachedReference(tiny_qwen2, tiny_qwen2_adapter, path).known() == 0
