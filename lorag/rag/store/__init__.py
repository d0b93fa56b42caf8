"""The document store: a small protocol (base.py) with SQLite and PostgreSQL peers, chosen by ``store.url``.

Usage::

    from lorag.rag.store import open_store

    with open_store(config) as store:
        print(store.collections())      # [CollectionInfo(name='default', documents=3, chunks=41)]
"""

from lorag.rag.store.base import (
    DEFAULT_COLLECTION,
    TOKEN_SEP,
    Chunk,
    CollectionInfo,
    CollectionNameError,
    DocumentRow,
    NewChunk,
    Ranking,
    Store,
    path_key,
    validate_collection,
)
from lorag.rag.store.factory import open_store, store_location
from lorag.rag.store.sqlite_schema import SCHEMA_VERSION

__all__ = [
    "DEFAULT_COLLECTION", "SCHEMA_VERSION", "TOKEN_SEP", "Chunk", "CollectionInfo", "CollectionNameError",
    "DocumentRow", "NewChunk", "Ranking", "Store", "open_store", "path_key", "store_location", "validate_collection",
]
