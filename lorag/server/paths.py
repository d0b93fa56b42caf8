"""Paths given over HTTP: only inside ``models.roots``, after resolving symlinks; ``..`` is refused outright."""

from __future__ import annotations

from pathlib import Path, PurePath

from lorag.config import Config
from lorag.errors import PathNotAllowedError
from lorag.server.errors import NotFoundError, coded


def model_roots(config: Config) -> list[Path]:
    """The configured model roots, resolved."""
    return [config.resolve(root).resolve() for root in config.settings.models.roots]


def allowed_model_path(config: Config, raw: str, must_exist: bool = True) -> Path:
    """Resolve ``raw`` and return it if it lies inside one of ``models.roots``; raise PathNotAllowedError if not."""
    if not raw or "\x00" in raw:
        raise coded(PathNotAllowedError("empty or malformed path."), "path_malformed")
    if ".." in PurePath(raw).parts:
        raise coded(PathNotAllowedError(f"path {raw!r} contains '..'; give a path inside models.roots without '..'."),
                    "path_dotdot", path=raw)
    roots = model_roots(config)
    if not roots:
        raise coded(PathNotAllowedError(
            "no models.roots configured, so the server may not read any model path.",
            "Add the directory holding your models to models.roots in the config.",
        ), "path_no_roots", config=str(config.path))
    path = config.resolve(raw).resolve()
    if not any(path == root or path.is_relative_to(root) for root in roots):
        names = ", ".join(str(r) for r in roots)
        raise coded(PathNotAllowedError(f"{raw!r} resolves to {path}, which is outside models.roots ({names})."),
                    "path_outside_roots", path=raw, resolved=str(path), roots=names)
    if must_exist and not path.exists():
        raise coded(NotFoundError(f"{path} does not exist."), "path_missing", path=str(path))
    return path
