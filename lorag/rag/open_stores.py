"""This thread's open stores for searching, kept between queries and reopened when the file was replaced.

Usage::

    store = reader(config)          # the same open store for the next query on this thread
    forget_reader(config)           # after an error: the next query opens it afresh
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from lorag.config import Config
from lorag.rag.store import Store, open_store
from lorag.rag.store.factory import store_location

_readers = threading.local()
READERS_PER_THREAD = 4


def reader(config: Config) -> Store:
    """This thread's open store for searching (opening one per query cost 1-13 ms: WAL files, schema check).

    A SQLite file replaced since (a restored backup, a new store at the same path) is opened afresh.
    """
    location = store_location(config)
    key = str(location)
    held: dict[str, tuple[Store, tuple[int, int] | None]] = _readers.__dict__.setdefault("stores", {})
    identity = _file_identity(location)
    entry = held.pop(key, None)
    if entry is not None and entry[1] == identity:
        held[key] = entry  # most recently used last
        return entry[0]
    if entry is not None:
        entry[0].close()
    while len(held) >= READERS_PER_THREAD:  # a process that searches many stores (tests) keeps few open
        held.pop(next(iter(held)))[0].close()
    store = open_store(config)
    held[key] = (store, _file_identity(location))
    return store


def forget_reader(config: Config) -> None:
    """Close this thread's open store for ``config``, if any."""
    held = _readers.__dict__.get("stores", {})
    entry = held.pop(str(store_location(config)), None)
    if entry is not None:
        try:
            entry[0].close()
        except Exception:  # closing a broken connection may fail too; it is dropped either way
            logging.getLogger(__name__).debug("closing a reader failed", exc_info=True)


def _file_identity(location: Path | str) -> tuple[int, int] | None:
    if not isinstance(location, Path):
        return None
    try:
        st = location.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino
