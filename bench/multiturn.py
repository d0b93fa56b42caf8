"""Follow-up retrieval: last message only vs the conversation-aware query (lexical, and LLM-condensed).

Ingests examples/corpus into a temporary store, then for every follow-up of tests/rag/dialogues.json
measures R@3 (is the expected document among the top 3 hits?) and the time to build the query, all in
the same run. The LLM rows use the configured model (the bundled Gemma 3 270M base model by default).

    python bench/multiturn.py            # last, lexical, llm
    python bench/multiturn.py --no-llm   # retrieval only (seconds)
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lorag.config import init_config, load_config
from lorag.rag.conversation import retrieval_query
from lorag.rag.conversation_eval import follow_up_recall, follow_ups, load_dialogues
from lorag.rag.ingest import ingest_paths

ROOT = Path(__file__).resolve().parent.parent
DIALOGUES = ROOT / "tests" / "rag" / "dialogues.json"


def _query(messages: list[dict[str, str]], mode: str, gen: Any) -> str:
    return retrieval_query(messages, mode, gen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-llm", action="store_true", help="skip the LLM condensation rows")
    args = parser.parse_args()
    dialogues = load_dialogues(DIALOGUES)
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(init_config(Path(tmp) / "lorag.yaml"))
        ingest_paths(config, [ROOT / "examples" / "corpus"])
        rows: list[tuple[str, str, Any]] = [("last message only", "last", None),
                                            ("lexical (last + 2 previous user turns)", "lexical", None)]
        if not args.no_llm:
            from lorag.rag.answer import default_generator

            gen = default_generator(config)
            rows.append((f"llm condensed ({gen.name}) + lexical", "llm", gen))
        n = sum(1 for _ in follow_ups(dialogues))
        print(f"{len(dialogues)} dialogues, {n} follow-ups, corpus {ROOT / 'examples' / 'corpus'}\n")
        print(f"| {'query':<52} | R@3   | s / follow-up |")
        print(f"|{'-' * 54}|-------|---------------|")
        for label, mode, gen in rows:
            started = time.perf_counter()
            recall = follow_up_recall(config, dialogues, functools.partial(_query, mode=mode, gen=gen))
            per = (time.perf_counter() - started) / n
            print(f"| {label:<52} | {recall:.3f} | {per:13.2f} |")
        if not args.no_llm:
            print("\nexamples of the LLM rewrite:")
            for messages, _ in list(follow_ups(dialogues))[:5]:
                print(f"  {messages[-1]['content']} → {retrieval_query(messages, 'llm', gen)}")


if __name__ == "__main__":
    main()
