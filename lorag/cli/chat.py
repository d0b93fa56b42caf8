"""Command: chat (an interactive terminal conversation about the documents, follow-ups included)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lorag.cli.apps import app

HELP_TEXT = "空行で終了・/new で新しい会話・/sources で直前の出典 (empty line or Ctrl-D quits, /new starts over)"


@app.command()
def chat(
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="How many chunks to use.")] = None,
    collection: Annotated[str | None, typer.Option("--collection", help="Search only this collection.")] = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="Extra instructions for the model.")] = None,
) -> None:
    """Chat with your documents: follow-up questions are searched with the conversation so far."""
    from rich.console import Console

    from lorag.config import load_config

    config = load_config()
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[dim]{HELP_TEXT}[/]")
    session = ChatSession(config, top_k=top_k, collection=collection, system=system)
    while True:
        try:
            line = console.input("[bold]質問> [/]").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not line:
            break
        if line == "/new":
            session.history.clear()
            console.print("[dim]新しい会話 (new conversation)[/]")
            continue
        if line == "/sources":
            _print_sources(console, session.last_citations)
            continue
        session.ask(line, lambda text: console.print(text, end=""))
        console.print()
        _print_sources(console, session.last_citations)


class ChatSession:
    """One conversation: each answer is retrieved with the earlier turns, which are kept in ``history``."""

    def __init__(self, config: Any, top_k: int | None = None, collection: str | None = None,
                 system: str | None = None) -> None:
        self.config, self.top_k, self.collection, self.system = config, top_k, collection, system
        self.history: list[dict[str, str]] = []
        self.last_citations: list[dict[str, Any]] = []

    def ask(self, question: str, show: Any) -> str:
        """Stream one answer through ``show(text)``; return the answer and remember the turn."""
        from lorag.errors import LoragError
        from lorag.limits import MAX_QUESTION_CHARS
        from lorag.rag.answer import answer_stream

        if len(question) > MAX_QUESTION_CHARS:
            raise LoragError(f"the question has {len(question):,} characters; the limit is {MAX_QUESTION_CHARS:,}.",
                             "Ask a shorter question (put long text into a document and ingest it).")
        answer = ""
        for event in answer_stream(self.config, question, top_k=self.top_k, history=self.history,
                                   system=self.system, collection=self.collection):
            if event["type"] == "token":
                show(event["text"])
            elif event["type"] == "done":
                answer, self.last_citations = event["answer"], event["citations"]
        self.history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        return answer


def _print_sources(console: Any, citations: list[dict[str, Any]]) -> None:
    from lorag.rag.prompts import page_text

    if not citations:
        return
    console.print("[dim]出典:[/]")
    for c in citations:
        mark = " ✓" if c.get("cited") else ""
        page = page_text(c.get("page"), c.get("page_label"))
        console.print(f"  [{c['n']}] {Path(c['source']).name}{page}{mark}", markup=False)
