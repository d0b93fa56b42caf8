"""Read and change the config over HTTP (validated, comment-keeping, with a .bak), without a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from lorag.config import Config, Settings, update_config
from lorag.errors import ConfigError, PathNotAllowedError
from lorag.server.auth import require_reader, require_token
from lorag.server.paths import model_roots
from lorag.server.routes import get_state
from lorag.server.state import ServerState

router = APIRouter(tags=["config"])
State = Annotated[ServerState, Depends(get_state)]

SECRET_KEYS = ("llm.openai_api_key",)
# Keys that widen what the server may read or where it listens: edit the file for those, not the API.
LOCKED_PREFIXES = ("server.", "models.roots", "store.path")
MODEL_PATH_KEYS = ("llm.model", "llm.adapter")


def config_view(config: Config) -> dict[str, Any]:
    """The settings as JSON, with secrets masked."""
    settings = config.settings.model_dump(mode="json")
    for dotted in SECRET_KEYS:
        section, key = dotted.split(".")
        if settings[section].get(key):
            settings[section][key] = "***"
    return {"path": str(config.path), "settings": settings}


def flatten(changes: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"llm": {"model": "x"}}`` and ``{"llm.model": "x"}`` both become ``{"llm.model": "x"}``."""
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _known_key(dotted: str) -> bool:
    model: Any = Settings
    for part in dotted.split("."):
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return False
        model = fields[part].annotation
    return getattr(model, "model_fields", None) is None  # a leaf, not a whole section


def check_changes(config: Config, flat: dict[str, Any]) -> None:
    """Refuse unknown keys (422), locked keys and model paths outside models.roots (403)."""
    unknown = [key for key in flat if not _known_key(key)]
    if unknown:
        raise ConfigError(f"unknown config keys: {', '.join(sorted(unknown))}.")
    for key, value in flat.items():
        if key.startswith(LOCKED_PREFIXES):
            raise PathNotAllowedError(f"{key} cannot be changed over HTTP; edit {config.path} instead.")
        if key in MODEL_PATH_KEYS and isinstance(value, str) and _looks_like_path(config, value):
            _check_model_path(config, key, value)


def _looks_like_path(config: Config, value: str) -> bool:
    return value.startswith(("/", ".", "~")) or value.endswith(".gguf") or config.resolve(value).exists()


def _check_model_path(config: Config, key: str, value: str) -> None:
    path = config.resolve(value).resolve()
    allowed = [*model_roots(config), config.output_dir.resolve()]
    if ".." in Path(value).parts or not any(path == r or path.is_relative_to(r) for r in allowed):
        raise PathNotAllowedError(f"{key}={value!r} is outside models.roots and models.output_dir.")


@router.get("/api/config", dependencies=[Depends(require_reader)])
def get_config(state: State) -> dict[str, Any]:
    """The current settings (secrets masked) and the file they come from."""
    return config_view(state.config)


class ConfigChanges(BaseModel):
    """Dotted keys or nested sections, e.g. ``{"llm.model": "x", "retrieval": {"top_k": 8}}``."""

    model_config = {"extra": "allow", "json_schema_extra": {"example": {"retrieval.top_k": 8}}}


@router.patch("/api/config", dependencies=[Depends(require_token)])
async def patch_config(state: State, changes: Annotated[ConfigChanges, Body()]) -> dict[str, Any]:
    """Change settings; invalid values are refused with 422 and field errors, the file keeps its comments."""
    flat = flatten(changes.model_dump())
    if not flat:
        raise ConfigError("no changes given; send e.g. {\"retrieval.top_k\": 8}.")
    check_changes(state.config, flat)
    new_config = await run_in_threadpool(update_config, state.config.path, flat)
    state.set_config(new_config)
    return config_view(state.config)
