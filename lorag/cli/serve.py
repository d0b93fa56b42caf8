"""Commands: serve (the web UI and HTTP API)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from lorag.cli.apps import app


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default server.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default server.port, 8000).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs (retrieval queries, tasks).")] = False,
    access_log: Annotated[bool, typer.Option(help="One line per request: method, path, status, time.")] = True,
) -> None:
    """Run the web UI and the HTTP API (OpenAI-compatible under /v1)."""
    import uvicorn
    from rich.console import Console

    from lorag.config import load_config
    from lorag.server.app import create_app
    from lorag.server.auth import token_path

    _logging(verbose, access_log)
    config = load_config()
    server = config.settings.server
    host = host or server.host
    port = port or server.port
    if host != server.host:
        # Loopback-only Host checks and the open-reads rule follow the address actually used.
        config.settings.server = server.model_copy(update={"host": host})
    application = create_app(config)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    console = Console()
    console.print(f"lorag: open [bold]http://{shown}:{port}/#token={application.state.token}[/] "
                  f"(token file: {token_path(config)})", highlight=False, soft_wrap=True)
    console.print(f"OpenAI-compatible API: http://{shown}:{port}/v1  (model: lorag-rag)", highlight=False)
    uvicorn.run(application, host=host, port=port, log_level="debug" if verbose else "warning", access_log=False)


def _logging(verbose: bool, access_log: bool) -> None:
    """Access lines on stderr at INFO; with ``-v`` every lorag logger at DEBUG."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    access = logging.getLogger("lorag.access")
    access.handlers[:] = [handler]
    access.propagate = False
    access.setLevel(logging.INFO if access_log else logging.WARNING)
    if verbose:
        logging.getLogger().setLevel(logging.DEBUG)
        logging.getLogger("lorag").setLevel(logging.DEBUG)
