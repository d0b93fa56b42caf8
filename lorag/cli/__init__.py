"""Command line: thin commands that parse, call the library and print."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, Any

import typer

from lorag.cli.apps import app
from lorag.errors import LoragError

# What the root callback learnt about this run, for the guard in main() (it runs after the callback is gone).
_run: dict[str, Any] = {"verbose": False, "command": ""}
_NO_CONFIG_NEEDED = ("init",)  # commands that create the config file, so a missing one is fine


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[str | None, typer.Option("--config", "-c", help="Config file (default ./lorag.yaml).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logs and tracebacks.")] = False,
) -> None:
    _run["verbose"] = verbose
    _run["command"] = _command_name(ctx)
    if config:
        os.environ["LORAG_CONFIG"] = config
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if ctx.invoked_subcommand not in _NO_CONFIG_NEEDED and "--help" not in _run.get("args", []):
        from lorag.config import check_config_file

        check_config_file(config, "-c" if config else None)


def _command_name(ctx: typer.Context) -> str:
    sub = ctx.invoked_subcommand or ""
    args: list[str] = _run.get("args", [])
    if sub == "model" and sub in args and args.index(sub) + 1 < len(args):
        sub = f"model {args[args.index(sub) + 1]}"
    return f"lorag {sub}".strip()


def _register_commands() -> None:
    # Importing a command module attaches its commands to the apps; each keeps heavy imports inside functions.
    from lorag.cli import build, chat, model, rag, serve, store  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `lorag` command: every failure becomes one red line and a non-zero exit.

    lorag's own errors and recognised faults (full disk, read-only, permission, network) say what to do; anything
    else is a bug: its traceback goes to a log file whose path the line gives (and to the terminal with -v).
    """
    _run.update(verbose=False, command="lorag", args=list(sys.argv[1:] if argv is None else argv))
    saved_config = os.environ.get("LORAG_CONFIG")
    try:
        _register_commands()
        # Not standalone: usage errors, Ctrl-C and a closed pipe are ours to report, in the same one-line form.
        code = app(args=argv, prog_name="lorag", standalone_mode=False)
    except typer.TyperException as exc:  # a usage error from the parser (bad option, value out of range, …)
        _fail(exc, _usage_line(exc), int(getattr(exc, "exit_code", 2)))
    except (KeyboardInterrupt, typer.Abort) as exc:
        _fail(exc, "interrupted (Ctrl-C).", 130)
    except BrokenPipeError:
        # The reader of our output went away (`lorag search … | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except LoragError as exc:
        from lorag.errors import clarify

        _fail(exc, str(clarify(exc)), exc.exit_code)
    except Exception as exc:
        from lorag.crashlog import failure_line

        _fail(exc, failure_line(exc, f"`{_run['command']}`"), 1)
    finally:
        # -c sets $LORAG_CONFIG for this run only (main() may be called again in the same process, as tests do).
        if saved_config is None:
            os.environ.pop("LORAG_CONFIG", None)
        else:
            os.environ["LORAG_CONFIG"] = saved_config
    sys.exit(code if isinstance(code, int) else 0)


def run() -> None:
    """The `lorag` command's process entry (and `python -m lorag`): main(), then leave the process promptly where
    torch is loaded (lorag.cli.leave). main() itself only raises SystemExit, so it can be called inside a process."""
    from lorag.cli.leave import leave

    try:
        main()
    except SystemExit as exc:
        leave(exc.code)
    leave(0)


def _usage_line(exc: Exception) -> str:
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", "") or "lorag"
    return f"{' '.join(str(message).split()).rstrip('.')} (see `{path} --help`)."


def _fail(exc: BaseException, line: str, code: int) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True)
    if _run["verbose"]:
        import traceback

        console.print("".join(traceback.format_exception(exc)), markup=False, highlight=False, soft_wrap=True)
    console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    sys.exit(code)
