"""Offline demo: ingest the sample corpus, ask one Japanese question, stream the answer with citations.

Run it with ``python -m lorag.demo``; it uses its own store under ./.lorag/demo/ and the bundled
Gemma 3 270M model, so it needs no network and leaves your own lorag.yaml alone.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from lorag.config import Config, init_config, load_config

DEMO_QUESTION = "給与は毎月何日に支払われますか？"
CORPUS_DIR = Path(__file__).resolve().parent.parent / "examples" / "corpus"


def demo_config(workdir: Path) -> Config:
    """A config of its own in ``workdir`` (defaults; the store lives beside it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "lorag.yaml"
    if not path.exists():
        init_config(path)
    return load_config(path)


def run_demo(workdir: Path = Path(".lorag/demo"), corpus: Path = CORPUS_DIR, question: str = DEMO_QUESTION,
             out: TextIO = sys.stdout) -> dict[str, Any]:
    """Ingest ``corpus`` into ``workdir``, answer ``question`` and print it; return the final "done" event."""
    from lorag.rag.ingest import ingest_paths

    if not corpus.is_dir():
        raise SystemExit(f"the sample corpus {corpus} is missing; run the demo from a lorag checkout.")
    config = demo_config(workdir)
    report = ingest_paths(config, [corpus])
    out.write(f"ingested {corpus}: {len(report.added)} added, {len(report.updated)} updated, "
              f"{len(report.unchanged)} unchanged, {len(report.failed)} failed\n")
    for path, reason in report.failed:
        out.write(f"  failed: {path}: {reason}\n")
    out.write(f"\n質問：{question}\n答え：")
    done = stream_answer(config, question, out)
    out.write("\n\n出典:\n")
    for c in done.get("citations", []):
        page = f" p.{c['page']}" if c["page"] is not None else ""
        out.write(f"  [{c['n']}] {Path(c['source']).name}{page} (chars {c['start']}-{c['end']})\n")
    return done



def stream_answer(config: Config, question: str, out: TextIO) -> dict[str, Any]:
    """Write the answer's tokens to ``out`` as they arrive; return the final "done" event."""
    from lorag.rag.answer import answer_stream

    done: dict[str, Any] = {}
    for event in answer_stream(config, question):
        if event["type"] == "token":
            out.write(event["text"])
            out.flush()
        elif event["type"] == "done":
            done = event
    return done


if __name__ == "__main__":
    run_demo()
