"""The Typer apps that command modules attach to (kept apart so modules don't import each other)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="lorag",
    help="Local, Japanese-first RAG that runs your own LoRA fine-tune.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
model_app = typer.Typer(help="Inspect, plan and build models (LoRA → GGUF → Ollama).", no_args_is_help=True)
app.add_typer(model_app, name="model")
