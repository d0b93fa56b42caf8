"""Commands: `lorag model build` (LoRA adapter → quantized GGUF → Ollama → config)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lorag.cli.apps import model_app

if TYPE_CHECKING:
    from lorag.build.request import BuildResult


@model_app.command("build")
def build(
    lora_path: Annotated[Path, typer.Option("--lora-path", help="PEFT LoRA adapter directory.")],
    base: Annotated[Path | None, typer.Option(help="Base model directory (default: from the adapter).")] = None,
    quantization: Annotated[str | None, typer.Option("--quantization", "-q",
                                                     help="Q4_K_M, Q4_K_S, Q5_K_M, Q6_K, Q8_0 or F16.")] = None,
    name: Annotated[str | None, typer.Option(help="Model name (default: the adapter folder's name).")] = None,
    mode: Annotated[str | None, typer.Option(
        help="merge (one GGUF), adapter (base GGUF + GGUF LoRA) or auto (build both, keep the route rule's pick).",
    )] = None,
    register: Annotated[str | None, typer.Option(help="ollama or none (default build.registry).")] = None,
    ollama_host: Annotated[str | None, typer.Option(help="Ollama URL (default llm.ollama_host).")] = None,
    update_config: Annotated[bool, typer.Option(help="Switch the config to the new model.")] = False,
    output: Annotated[Path | None, typer.Option(help="Output directory (default models.output_dir).")] = None,
    eval_prompts: Annotated[Path | None, typer.Option(
        "--eval-prompts", help="Held-out prompts (JSONL: prompt, question or messages per line) for the behaviour "
        "score (default build.eval_prompts, else evaluation lines beside the adapter, else a generic set).",
    )] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Merge a LoRA adapter into its base, convert to GGUF, quantize, verify, and optionally register it."""
    result = run_build_command(lora_path=lora_path, base=base, quantization=quantization, name=name, mode=mode,
                               register=register, ollama_host=ollama_host, update_config=update_config,
                               output_dir=output, eval_prompts=eval_prompts, quiet=as_json)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_summary(result)


def run_build_command(quiet: bool = False, config_path: Path | None = None, **fields: Any) -> BuildResult:
    """Build from command-line values (None = the config's build.* default), with progress bars unless quiet."""
    from lorag.build.fast import preload

    preload.start()  # torch's pages come off the disk while the build's modules import (every route imports torch)
    from lorag.build.pipeline import run_build
    from lorag.build.request import BuildRequest
    from lorag.config import load_config
    from lorag.errors import BuildError

    config = load_config(config_path)
    defaults = config.settings.build
    fields["quantization"] = fields.get("quantization") or defaults.quantization
    fields["mode"] = fields.get("mode") or defaults.mode
    fields["register"] = fields.get("register") or defaults.registry
    if fields["register"] not in ("ollama", "none"):
        raise BuildError(f"unknown --register value {fields['register']!r}.", "Use ollama or none.")
    request = BuildRequest(**fields)
    if quiet:
        return run_build(config, request)
    with _Bars() as bars:
        return run_build(config, request, progress=bars.update)


class _Bars:
    """One rich progress bar per stage, fed by the build's progress events."""

    def __enter__(self) -> _Bars:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.fields[stage]:<9}"), BarColumn(), TaskProgressColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.description}"), transient=False)
        self.progress.__enter__()
        self.tasks: dict[str, Any] = {}
        return self

    def update(self, event: dict[str, Any]) -> None:
        stage = str(event.get("stage", "?"))
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task("", total=100, stage=stage)
        message = str(event.get("message", ""))[:70]
        self.progress.update(self.tasks[stage], completed=float(event.get("percent", 0)), description=message)

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)


def print_summary(result: BuildResult) -> None:
    """Human-readable result: artifact, size, fidelity, what was registered and switched."""
    from rich.console import Console

    from lorag.build.request import STAGES

    console = Console()
    fid = result.fidelity
    console.print(f"[bold green]built[/] {result.gguf} ({result.size_bytes / 1e6:.1f} MB, {result.quantization})"
                  + (" [dim](cache hit)[/]" if result.cache_hit else ""), highlight=False)
    if fid.get("kl_mean") is not None:
        console.print(f"fidelity vs the unquantized fine-tune: KL {fid['kl_mean']:.4f}, top-1 {fid['top1']:.0%}")
    _print_behaviour(console, result.behaviour)
    if result.route_choice:
        _print_route_choice(console, result.route_choice)
    console.print(f"Modelfile: {result.modelfile}", highlight=False)
    if result.registered_as:
        console.print(f"registered in Ollama as [bold]{result.registered_as}[/]", highlight=False)
    if result.config_updated:
        console.print("config updated: the RAG generator now uses this model")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.stages.items() if k in STAGES)
    console.print(f"[dim]{stages}[/]", highlight=False)


def _print_behaviour(console: Any, behaviour: dict[str, Any]) -> None:
    if "agreement" not in behaviour:
        if behaviour.get("skipped"):
            console.print(f"[yellow]behaviour:[/] {behaviour['skipped']}", highlight=False)
        return
    source = "generic built-in prompts" if behaviour.get("generic") else behaviour.get("source", "")
    console.print(f"behaviour on held-out prompts: greedy agreement {behaviour['agreement']:.2f}, "
                  f"{behaviour['exact']}/{behaviour['prompts']} answers identical (first {behaviour['max_new_tokens']} "
                  f"tokens) to the unquantized fine-tune [dim]({behaviour.get('reference', '')}; {source})[/]",
                  highlight=False)


def _print_route_choice(console: Any, choice: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="route choice (greedy agreement within "
                        f"{choice.get('tolerance', 0):.2f} of the best, then lowest KL)", title_justify="left")
    for column in ("candidate", "KL", "top-1", "greedy agreement", "identical", "chosen", "why"):
        table.add_column(column, justify="left" if column in ("candidate", "why") else "right")
    for row in choice.get("candidates", []):
        kl = f"{row['kl_mean']:.4f}" if row.get("kl_mean") is not None else "-"
        top1 = f"{row['top1']:.0%}" if row.get("top1") is not None else "-"
        agree = f"{row['agreement']:.2f}" if row.get("agreement") is not None else "-"
        same = f"{row['exact']}/{row['prompts']}" if row.get("exact") is not None else "-"
        table.add_row(row["name"], kl, top1, agree, same, "yes" if row.get("chosen") else "", row.get("reason", ""))
    console.print(table)
