"""Commands: init, ingest, reindex, remove, ask, search."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer

from lorag.cli.apps import app

Command = TypeVar("Command", bound=Callable[..., Any])


def _config() -> Any:
    from lorag.config import load_config

    return load_config()


MAX_TOP_K = 100  # the same bound as /api/query, /api/search and retrieval.top_k


def _checked_text(text: str, what: str, example: str) -> str:
    """Refuse an empty or over-long question before any model or store is loaded (the limits /api and /v1 use)."""
    from lorag.errors import InputError
    from lorag.limits import MAX_QUESTION_CHARS

    if not text.strip():
        raise InputError(f"the {what} is empty.", f"Give some text, e.g. `{example}`.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # bytes the terminal's encoding could not decode (surrogate escapes)
        raise InputError(f"the {what} is not valid text (undecodable byte at character {exc.start + 1}).",
                         "Check the terminal's encoding (LANG=ja_JP.UTF-8 or C.UTF-8).") from None
    if len(text) > MAX_QUESTION_CHARS:
        raise InputError(f"the {what} is {len(text):,} characters; the limit is {MAX_QUESTION_CHARS:,}.",
                         f"Shorten it: long text belongs in a document (`lorag ingest FILE`), not in a {what}.")
    return text


def _inputs_checked(name: str, what: str, example: str) -> Callable[[Command], Command]:
    """Check a command's text argument ``name`` and its --top-k before the command loads anything."""

    def wrap(command: Command) -> Command:
        @functools.wraps(command)
        def checked(*args: Any, **kwargs: Any) -> Any:
            from lorag.errors import InputError

            kwargs[name] = _checked_text(kwargs[name], what, example)
            top_k = kwargs.get("top_k")
            if top_k is not None and not 1 <= top_k <= MAX_TOP_K:
                raise InputError(f"--top-k must be between 1 and {MAX_TOP_K} (it is {top_k}).")
            return command(*args, **kwargs)

        return cast(Command, checked)

    return wrap


def _shown(path: str) -> str:
    """A path relative to the current directory when it is inside it, else absolute."""
    p = Path(path)
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


@app.command()
def init(force: Annotated[bool, typer.Option("--force", help="Overwrite an existing lorag.yaml.")] = False) -> None:
    """Write a commented lorag.yaml with the default settings."""
    from lorag.config import config_path, init_config, load_config
    from lorag.server.auth import ensure_token, token_path

    path = init_config(config_path(), force=force)
    config = load_config(path)
    ensure_token(config)  # the web API's bearer token, readable by this user only (0600)
    typer.echo(f"wrote {path}")
    typer.echo(f"API token in {token_path(config)}")


@app.command()
def ingest(paths: Annotated[list[str], typer.Argument(help="Files or folders (walked recursively).")],
           collection: Annotated[str, typer.Option("--collection", help="Collection to put the documents in.")]
           = "default") -> None:
    """Add or update documents in the store (unchanged files are skipped)."""
    from lorag.cli.ingest_view import IngestBar, print_report
    from lorag.rag.ingest import ingest_paths

    with IngestBar() as bar:
        report = ingest_paths(_config(), paths, progress=bar.update, collection=collection)
    print_report(report)
    if report.failed:
        raise typer.Exit(1)


@app.command()
def reindex(force: Annotated[bool, typer.Option("--force", help="Re-embed every chunk, even up-to-date ones.")]
            = False) -> None:
    """Re-embed the stored chunks with the configured embedder, in place (resumable: run it again after a stop)."""
    from lorag.cli.ingest_view import IngestBar
    from lorag.rag.reindex import reindex_store

    with IngestBar(label="re-embedding") as bar:
        result = reindex_store(_config(), progress=bar.update, force=force)
    typer.echo(f"re-embedded {result.chunks} chunks of {result.documents} documents with {result.embedder} "
               f"({result.skipped} documents already up to date) in {result.seconds:.1f} s")


@app.command()
def remove(paths: Annotated[list[str], typer.Argument(help="Files or folders to remove from the store.")]) -> None:
    """Remove documents from the store (names match in any Unicode normal form, as macOS writes them)."""
    from lorag.rag.store import open_store

    targets = [Path(p).expanduser().resolve() for p in paths]
    n = 0
    with open_store(_config()) as store:
        for doc in {d.id: d for t in targets for d in store.documents_under(t)}.values():
            store.delete_document(doc.id)
            n += 1
    typer.echo(f"removed {n} document{'s' if n != 1 else ''}")


CollectionOpt = Annotated[str | None, typer.Option("--collection", help="Only this knowledge collection.")]


@app.command()
@_inputs_checked("question", "question", "lorag ask 有給休暇は何日ですか？")
def ask(question: Annotated[str, typer.Argument(help="The question, e.g. 有給休暇は何日ですか？")],
        top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="How many chunks to use.")] = None,
        collection: CollectionOpt = None) -> None:
    """Answer a question from your documents, with numbered sources."""
    from lorag.rag.answer import answer_stream
    from lorag.rag.store import validate_collection

    scope = None if collection is None else validate_collection(collection)
    done: dict[str, Any] = {}
    for event in answer_stream(_config(), question, top_k=top_k, collection=scope):
        if event["type"] == "token":
            typer.echo(event["text"], nl=False)
        elif event["type"] == "done":
            done = event
    typer.echo("")
    if done.get("citations"):
        typer.echo("\n出典:")
        for c in done["citations"]:
            page = f" p.{c['page']}" if c["page"] is not None else ""
            typer.echo(f"  [{c['n']}] {_shown(c['source'])}{page} (chars {c['start']}-{c['end']})")


@app.command()
@_inputs_checked("query", "query", "lorag search 有給休暇")
def search(query: Annotated[str, typer.Argument(help="What to look for.")],
           top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="How many hits.")] = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
           collection: CollectionOpt = None) -> None:
    """Show the chunks that best match a query (hybrid BM25 + dense)."""
    from lorag.rag.retrieve import search as run_search
    from lorag.rag.served import served_search
    from lorag.rag.store import validate_collection

    config = _config()
    scope = None if collection is None else validate_collection(collection)
    hits = served_search(config, query, top_k, scope)
    if hits is None:
        hits = run_search(config, query, top_k, collection=scope)
    if as_json:
        fields = ("rank", "score", "source", "page", "start", "end", "text")
        typer.echo(json.dumps([{f: h.to_dict()[f] for f in fields} for h in hits], ensure_ascii=False, indent=2))
        return
    if not hits:
        typer.echo("no matches (is anything ingested? try `lorag ingest PATH`)")
    for h in hits:
        page = f" p.{h.page}" if h.page is not None else ""
        snippet = " ".join(h.text.split())[:120]
        typer.echo(f"{h.rank}. {_shown(h.source)}{page} ({h.start}-{h.end}) score={h.score:.4f}\n   {snippet}")
