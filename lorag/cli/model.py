"""Commands: `lorag model inspect` and `lorag model plan`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from lorag.cli.apps import model_app

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@model_app.command("inspect")
def inspect_cmd(path: Annotated[str, typer.Argument(help="Model dir, LoRA adapter dir, .gguf file or Ollama name.")],
                as_json: JsonOpt = False) -> None:
    """Tell what PATH is: architecture, parameters, dtype, context, chat template, and for an adapter its base."""
    from lorag.config import load_config
    from lorag.inspect.model import inspect_path
    from lorag.inspect.placement import model_search_paths

    cfg = load_config()
    info = inspect_path(path, model_search_paths(cfg), cfg.settings.llm.ollama_host)
    if as_json:
        typer.echo(json.dumps(info.to_dict(), ensure_ascii=False, indent=2))
        return
    _print_info(info.to_dict())


def _print_info(d: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from lorag.inspect.hardware import format_size

    table = Table(title=f"{d['path']} ({d['kind']})", show_header=False)
    rows = [("architecture", d["architecture"]), ("parameters", f"{d['n_params']:,} (from {d['params_source']})"),
            ("dtype", d["dtype"]), ("quantization", d["quantization"] or "-"),
            ("context length", f"{d['context_length']:,}"),
            ("chat template", "yes" if d["has_chat_template"] else "no"),
            ("layers / heads / KV heads / head dim",
             f"{d['layers']} / {d['heads']} / {d['kv_heads']} / {d['head_dim']}"),
            ("hidden / vocab", f"{d['hidden_size']} / {d['vocab_size']}")]
    if d["file_bytes"]:
        rows.append(("file size", format_size(d["file_bytes"])))
    a = d.get("adapter")
    if a:
        rows += [("base model", f"{a['base_name']} → {d['base']['path']}"), ("rank / alpha / scale",
                 f"{a['rank']} / {a['alpha']:g} / {a['scale']:g}"), ("target modules", ", ".join(a["target_modules"])),
                 ("touches embed_tokens/lm_head", "yes" if a["touches_embeddings"] else "no"),
                 ("trained on a quantized base (QLoRA)", "yes" if a["qlora"] else "no")]
    for key, value in rows:
        table.add_row(key, str(value))
    Console().print(table)


@model_app.command("plan")
def plan_cmd(
    path: Annotated[str, typer.Argument(help="Model dir, LoRA adapter dir, .gguf file or Ollama name.")],
    gpu_memory: Annotated[str | None, typer.Option(help="Plan for a GPU with this much free memory (36GB; 0 = none).")]
    = None,
    ram: Annotated[str | None, typer.Option(help="Plan for this much free RAM (64GB).")] = None,
    context: Annotated[int | None, typer.Option(help="Context length in tokens (default llm.context).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rank the ways of running PATH here (or on the machine described) and mark the one that fits best."""
    from lorag.config import load_config
    from lorag.inspect.hardware import parse_size, pretend_hardware
    from lorag.inspect.placement import placement_for

    cfg = load_config()
    hw = None
    if gpu_memory is not None or ram is not None:
        hw = pretend_hardware(parse_size(gpu_memory) if gpu_memory is not None else None,
                              parse_size(ram) if ram is not None else None)
    plan = placement_for(cfg, path, hw, context)
    if as_json:
        typer.echo(json.dumps(plan.to_dict(), ensure_ascii=False, indent=2))
        return
    _print_plan(plan)


def _print_plan(plan: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from lorag.inspect.hardware import format_size

    table = Table(title=f"plan for {plan.info.path} ({plan.n_ctx:,} tokens of context)")
    for col in ("", "#", "backend", "precision", "where", "memory", "fits", "note"):
        table.add_column(col)
    for i, o in enumerate(plan.options):
        note = "GGUF build first" if o.needs_build and o.backend == "llamacpp" else o.note
        table.add_row("→" if i == plan.chosen else "", str(i), o.backend, o.precision, o.placement,
                      format_size(o.memory_bytes), "[green]yes[/]" if o.fits else "[red]no[/]", note)
    console = Console()
    console.print(table)
    console.print(("[bold]chosen:[/] " if plan.chosen is not None else "[bold red]nothing fits:[/] ") + plan.reason)
