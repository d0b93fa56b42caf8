"""Command line: thin commands that parse, call the library and print."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from lorag.cli.apps import app
from lorag.errors import LoragError


@app.callback()
def _root(
    config: Annotated[str | None, typer.Option("--config", "-c", help="Config file (default ./lorag.yaml).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logs.")] = False,
) -> None:
    if config:
        os.environ["LORAG_CONFIG"] = config
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _register_commands() -> None:
    # Importing a command module attaches its commands to the apps; each keeps heavy imports inside functions.
    from lorag.cli import build, chat, model, rag, serve  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `lorag` command: a LoragError becomes one red line and a non-zero exit."""
    _register_commands()
    try:
        app(args=argv, prog_name="lorag")
    except LoragError as exc:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
