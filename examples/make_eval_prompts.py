"""Write examples/eval_qa.jsonl: held-out prompts for scoring builds of examples/adapter by behaviour.

Each line is lorag's completion prompt (the format the adapter was trained on) around the passage that answers one
question of questions.json (none of them is a training line) plus one distractor passage, cut short as in
training so a line stays short (a build scores its candidates on every line, on CPU). ``lorag model build`` finds
the file beside the adapter and compares each build's greedy answers with the unquantized fine-tune's.

Run: ``python examples/make_eval_prompts.py``
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from train_adapter import QUESTIONS_FILE, SEED, ContextShape, corpus_chunks, make_prompt  # noqa: E402

EVAL_FILE = HERE / "eval_qa.jsonl"
COUNT = 8
# One distractor and 120-character passages: ~170 tokens a prompt, since every candidate prefills every prompt.
SHAPE = ContextShape(max_distractors=1, width=120)


def main() -> None:
    """Build the prompts from the first COUNT held-out questions and write them atomically."""
    from lorag.atomic import atomic_write_text

    rng = random.Random(SEED + 2)
    chunks = corpus_chunks()
    lines = []
    for item in json.loads(QUESTIONS_FILE.read_text(encoding="utf-8"))[:COUNT]:
        prompt, _ = make_prompt(item["question"], item["source"], item["answer"], chunks, rng, SHAPE)
        row = {"prompt": prompt, "question": item["question"], "source": item["source"], "answer": item["answer"]}
        lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(EVAL_FILE, "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} prompts to {EVAL_FILE}")


if __name__ == "__main__":
    main()
