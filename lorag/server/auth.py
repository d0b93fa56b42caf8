"""Bearer-token auth: every mutating endpoint needs the token; reads and queries are open to loopback clients.

The token lives in ``server.token_file`` (mode 0600). ``lorag serve`` prints the page URL with the token in
the fragment (``http://127.0.0.1:8000/#token=...``): fragments never reach the server or its logs, and the
page moves the token into localStorage and strips it from the address bar. The page never gets the token
from the server itself, so a page that could read our HTML could not learn it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import Request
from starlette.exceptions import HTTPException

from lorag.config import Config

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def token_path(config: Config) -> Path:
    """Where the token file lives for this config."""
    return config.resolve(config.settings.server.token_file)


def ensure_token(config: Config) -> str:
    """Return the API token, creating the token file (0600) with a fresh random token if it is missing."""
    path = token_path(config)
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            _tighten(path)
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # O_EXCL + 0600 at creation: the token is never readable by others, not even for a moment.
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    os.replace(tmp, path)
    return token


def _tighten(path: Path) -> None:
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def bearer_token(request: Request) -> str:
    """The token from ``Authorization: Bearer ...`` ("" when absent)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def is_loopback(request: Request) -> bool:
    """True when the client connects from this machine."""
    return request.client is not None and request.client.host in LOOPBACK_HOSTS


def _check(request: Request) -> None:
    expected: str = request.app.state.token
    given = bearer_token(request)
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        reason = "missing bearer token" if not given else "wrong bearer token"
        raise HTTPException(
            401,
            f"{reason}: send 'Authorization: Bearer <token>' (the token is in server.token_file)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_token(request: Request) -> None:
    """Dependency for mutating endpoints: a valid bearer token, always."""
    _check(request)


def require_reader(request: Request) -> None:
    """Dependency for reads and queries: open to loopback clients, token needed from anywhere else."""
    if not is_loopback(request):
        _check(request)
