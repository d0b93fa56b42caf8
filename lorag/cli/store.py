"""Commands: `lorag collections`, `lorag documents`, `lorag store migrate --to URL`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from lorag.cli.apps import app

store_app = typer.Typer(help="Look after the document store (SQLite or PostgreSQL).", no_args_is_help=True)
app.add_typer(store_app, name="store")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _open() -> Any:
    from lorag.config import load_config
    from lorag.rag.store import open_store

    return open_store(load_config())


@app.command()
def collections(as_json: JsonOpt = False) -> None:
    """List the knowledge collections with their document and chunk counts."""
    with _open() as store:
        rows = store.collections()
    if as_json:
        typer.echo(json.dumps([r._asdict() for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no collections yet (ingest with `lorag ingest --collection NAME PATH`)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("collection", "documents", "chunks", box=None)
    for r in rows:
        table.add_row(r.name, str(r.documents), str(r.chunks))
    Console().print(table)


@app.command()
def documents(
    collection: Annotated[str | None, typer.Option("--collection", help="Only this collection.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the stored documents: path, collection, chunks, pages, when added."""
    from lorag.rag.store import validate_collection

    name = validate_collection(collection) if collection is not None else None
    with _open() as store:
        rows = store.list_documents(collection=name)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no documents" + (f" in collection {name}" if name else "") + " (try `lorag ingest PATH`)")
        return
    from rich.console import Console
    from rich.table import Table

    from lorag.cli.rag import _shown

    table = Table("path", "collection", "chunks", "pages", "added", box=None)
    for r in rows:
        pages = r.meta.get("pages")
        table.add_row(_shown(r.path), r.collection, str(r.n_chunks), "-" if pages is None else str(pages),
                      r.added_at.replace("T", " ").removesuffix("+00:00"))
    Console().print(table, soft_wrap=True)


@store_app.command("migrate")
def migrate_cmd(
    to: Annotated[str, typer.Option("--to", help="The target, e.g. postgresql://user:password@host:5432/db.")],
    switch: Annotated[bool, typer.Option("--switch", help="Point store.url at the target once verified.")] = False,
) -> None:
    """Copy the configured store into another one (resumable; verified by counts and a checksum)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from lorag.config import load_config, update_config
    from lorag.rag.store.factory import redact
    from lorag.rag.store.migrate import migrate

    config = load_config()
    with _open() as source, Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("copying", total=None)

        def progress(done: int, total: int, path: str) -> None:
            bar.update(task, completed=done, total=total, description=f"copying {path[-40:]}")

        report = migrate(source, to, progress=progress)
    typer.echo(f"copied {report.copied} of {report.documents} documents ({report.chunks} chunks) to {redact(to)}")
    typer.echo(f"verified: counts equal, content checksum {report.checksum}; the source was not changed")
    if switch:
        update_config(config.path, {"store.url": to})
        typer.echo(f"store.url in {config.path} now points at {redact(to)}")
    else:
        typer.echo("to use it: set store.url in lorag.yaml (or rerun with --switch)")
