"""Models: what is configured, what was built, what Ollama has; inspect a model and plan it for this machine."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from lorag.config import Config
from lorag.errors import LoragError
from lorag.server.auth import require_reader
from lorag.server.paths import allowed_model_path
from lorag.server.routes import get_state
from lorag.server.state import ServerState

router = APIRouter(tags=["models"], dependencies=[Depends(require_reader)])
State = Annotated[ServerState, Depends(get_state)]
PLAN_CACHE_S = 300.0  # inspecting a large GGUF takes seconds; free memory changes slowly
PathParam = Annotated[str, Query(min_length=1, max_length=4096, description="a path inside models.roots")]


def current_model(config: Config) -> dict[str, Any]:
    """The configured LLM, as the page shows it."""
    llm = config.settings.llm
    return {
        "backend": llm.backend, "model": llm.model or "(bundled Gemma 3 270M)", "adapter": llm.adapter,
        "context": llm.context, "max_tokens": llm.max_tokens, "bundled": not llm.model,
    }


def built_artifacts(config: Config) -> list[dict[str, Any]]:
    """GGUF builds under models.output_dir (each folder with a build.json), newest first."""
    out = config.output_dir
    if not out.is_dir():
        return []
    found = []
    for record_file in out.glob("*/build.json"):
        try:
            record = json.loads(record_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        gguf = record_file.parent / str(record.get("gguf", ""))
        if gguf.is_file():
            stat = gguf.stat()
            found.append({"name": record_file.parent.name, "gguf": str(gguf), "size_bytes": stat.st_size,
                          "modified": stat.st_mtime, "quantization": record.get("quantization"),
                          "fidelity": record.get("fidelity")})
    return sorted(found, key=lambda a: a["modified"], reverse=True)


def ollama_models(host: str) -> dict[str, Any]:
    """Models registered in Ollama, or why they could not be listed."""
    from lorag.registry.ollama import OllamaClient

    try:
        with OllamaClient(host, timeout=2.0) as client:
            return {"reachable": True, "host": host, "models": client.tags()}
    except LoragError as exc:
        return {"reachable": False, "host": host, "models": [], "error": str(exc)}


@router.get("/api/models")
async def list_models(state: State) -> dict[str, Any]:
    """The configured model, built GGUF artifacts and (if reachable) Ollama's models."""
    config = state.config
    return {
        "current": current_model(config),
        "artifacts": await run_in_threadpool(built_artifacts, config),
        "ollama": await run_in_threadpool(ollama_models, config.settings.llm.ollama_host),
        "roots": [str(config.resolve(r)) for r in config.settings.models.roots],
    }


@router.get("/api/models/inspect")
async def inspect_model(path: PathParam, state: State) -> dict[str, Any]:
    """Architecture, size, dtype, context and adapter details of a model inside models.roots."""
    config = state.config
    target = allowed_model_path(config, path)

    def work() -> dict[str, Any]:
        from lorag.inspect.model import inspect_path
        from lorag.inspect.placement import model_search_paths

        info: dict[str, Any] = inspect_path(target, model_search_paths(config)).to_dict()
        return info

    return await run_in_threadpool(work)


@router.get("/api/models/plan")
async def plan_model(state: State, path: Annotated[str | None, Query(max_length=4096)] = None) -> dict[str, Any]:
    """How a model (inside models.roots; default: the configured one) would run on this machine, and why."""
    config = state.config
    target = allowed_model_path(config, path) if path else _configured_model_path(config)
    settings = config.settings
    key = json.dumps([str(target), _mtime(target), settings.llm.model_dump(), settings.build.quantization,
                      settings.models.search_paths])
    cached = state.plan_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < PLAN_CACHE_S:
        return cached[1]

    def work() -> dict[str, Any]:
        from lorag.inspect.placement import placement_for

        result: dict[str, Any] = placement_for(config, target).to_dict()
        return result

    result = await run_in_threadpool(work)
    state.plan_cache[key] = (time.monotonic(), result)
    return result


def _mtime(target: Path | str | None) -> float:
    try:
        return Path(target).stat().st_mtime if target is not None else 0.0
    except OSError:  # an Ollama name, not a file
        return 0.0


def _configured_model_path(config: Config) -> Path | str | None:
    """The bundled GGUF when no model is configured, else None: placement_for plans llm.model with llm.adapter."""
    if not config.settings.llm.model:
        from lorag.generate.llamacpp import bundled_model_path

        return bundled_model_path()
    return None
