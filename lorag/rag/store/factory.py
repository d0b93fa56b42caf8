"""Which backend a store location names: a file path or ``sqlite:///…`` is SQLite, ``postgresql://…`` Postgres."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from lorag.rag.store.base import Store, backend_for, is_postgres

if TYPE_CHECKING:
    from lorag.config import Config

__all__ = ["backend_for", "is_postgres", "open_store", "redact", "same_location", "sqlite_path", "store_location"]


def sqlite_path(location: Path | str) -> Path:
    """The file of a SQLite location: a path, or a ``sqlite:///abs/path.db`` URL."""
    text = str(location)
    return Path(text.removeprefix("sqlite://")).expanduser() if text.startswith("sqlite://") else Path(location)


def same_location(a: Path | str, b: Path | str) -> bool:
    """Whether two locations name the same store."""
    if is_postgres(a) or is_postgres(b):
        return str(a) == str(b)
    return sqlite_path(a).resolve() == sqlite_path(b).resolve()


def store_location(config: Config) -> Path | str:
    """Where ``config`` keeps its store: ``store.url`` when set, else the SQLite file ``store.path``."""
    url = config.settings.store.url.strip()
    if not url:
        return config.store_path
    if url.startswith("sqlite://"):
        return config.resolve(url.removeprefix("sqlite://"))
    return url


def open_store(config: Config) -> Store:
    """Open the configured store (``store.url``, default the SQLite file at ``store.path``)."""
    return Store(store_location(config))


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def store_fingerprint(location: Path | str) -> str:
    """A short, stable id of a store location (so two processes can tell they use the same store)."""
    import hashlib

    text = str(Path(location).resolve()) if isinstance(location, Path) else redact(location)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
