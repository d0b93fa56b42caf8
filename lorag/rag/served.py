"""Search through a running `lorag serve` that uses the same store, so the CLI skips loading the models.

Loading the embedder is most of a new process's first query (see bench/store_scale.py); a server on the
configured address has it loaded. It is used only when it answers within a moment and reports the same store.

Usage::

    hits = served_search(config, "有給休暇は何日？", top_k=5)   # None: no such server, search locally
"""

from __future__ import annotations

import logging

from lorag.config import Config
from lorag.rag.retrieve import Hit
from lorag.rag.store.factory import store_fingerprint, store_location

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 0.25
READ_TIMEOUT_S = 30.0
_HIT_FIELDS = ("rank", "score", "source", "page", "start", "end", "text", "chunk_id", "doc_id")


def served_search(config: Config, query: str, top_k: int | None = None,
                  collection: str | None = None) -> list[Hit] | None:
    """The hits from the running server, or None when none answers for this store."""
    host = config.settings.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if not _listening(host, config.settings.server.port):
        log.debug("nothing listens on %s:%s; searching in this process", host, config.settings.server.port)
        return None
    import httpx  # only now: importing it costs a new process 0.1-0.2 s

    url = f"http://{host}:{config.settings.server.port}"
    params: dict[str, str | int] = {"q": query}
    if top_k:
        params["top_k"] = top_k
    if collection is not None:
        params["collection"] = collection
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    try:
        health = httpx.get(f"{url}/api/health", timeout=httpx.Timeout(1.0, connect=CONNECT_TIMEOUT_S)).json()
        if not isinstance(health, dict) or health.get("store") != store_fingerprint(store_location(config)):
            log.debug("the server at %s uses another store; searching in this process", url)
            return None
        reply = httpx.get(f"{url}/api/search", params=params, timeout=timeout)
        body = reply.json() if reply.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        log.debug("no lorag serve answered at %s; searching in this process", url)
        return None
    if not isinstance(body, dict):
        return None
    log.info("searched through the running lorag serve at %s (same store, models already loaded)", url)
    return [Hit(**{f: h[f] for f in _HIT_FIELDS}, page_label=h.get("page_label")) for h in body.get("hits", [])]


def _listening(host: str, port: int) -> bool:
    """Whether something accepts connections on ``host:port`` (a refused connect answers at once)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False
