"""HTTP routes, one module per area: query, documents, models, jobs (builds), config, openai."""

from __future__ import annotations

from fastapi import Request

from lorag.server.state import ServerState


def get_state(request: Request) -> ServerState:
    """The ServerState of the app handling ``request``."""
    state: ServerState = request.app.state.lorag
    return state
