"""The FastAPI app: ``create_app(config)`` wires state, auth, error handlers, routes and the static page.

Security (details in auth.py, paths.py, limits.py):
- every mutating endpoint needs the bearer token from ``server.token_file`` (0600); reads and queries are
  open to loopback clients only, anyone else needs the token for those too;
- bound to loopback, only loopback Host headers are accepted (no DNS rebinding); CORS is off unless
  ``server.cors_origins`` lists origins;
- model paths must resolve (symlinks followed) inside ``models.roots``; ``..`` is refused; no endpoint
  serves arbitrary files; uploads are size-limited (413) and stored under server-chosen names;
- config changes cannot touch ``server.*``, ``models.roots`` or ``store.path``;
- lorag errors become ``{"error": message}`` with 400/403/404/409/413/422/503, never a traceback.

Usage::

    import uvicorn
    uvicorn.run(create_app(load_config()), host="127.0.0.1", port=8000)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from lorag.config import Config
from lorag.server.access_log import AccessLog
from lorag.server.auth import LOOPBACK_HOSTS, ensure_token
from lorag.server.errors import install_error_handlers
from lorag.server.jobs import JobManager
from lorag.server.jobstore import JobStore
from lorag.server.limits import BodySizeLimit
from lorag.server.state import ServerState
from lorag.server.worker import WorkerTarget, run_build_job

STATIC_DIR = Path(__file__).parent / "static"
# The page keeps the token in localStorage: no inline or foreign scripts may run, and no site may frame it.
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def create_app(config: Config, job_target: WorkerTarget | None = None) -> FastAPI:
    """Build the app for ``config``; ``job_target`` replaces the build worker function (tests of the job queue)."""
    state = ServerState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        jobs = _make_jobs(state, job_target)
        state.jobs = jobs
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()
            state.gate.close()

    app = FastAPI(
        title="lorag", version="0.1.0", lifespan=lifespan,
        description="Local, Japanese-first RAG over your documents, answered by your own LoRA fine-tune.",
    )
    app.state.lorag = state
    app.state.token = ensure_token(config)
    install_error_handlers(app)
    _add_middleware(app, config)
    _add_routes(app)
    return app


def _make_jobs(state: ServerState, job_target: WorkerTarget | None) -> JobManager:
    data_dir = state.config.data_dir
    return JobManager(
        JobStore(data_dir / "jobs.db"), data_dir / "jobs", target=job_target or run_build_job,
        on_success=state.after_build, clean_dirs=lambda: [state.config.output_dir],
    )


def _add_middleware(app: FastAPI, config: Config) -> None:
    server = config.settings.server
    app.add_middleware(BodySizeLimit, max_upload_bytes=int(server.max_upload_mb * 1024 * 1024))
    if server.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=server.cors_origins, allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )
    if server.host in LOOPBACK_HOSTS:
        # Bound to loopback: refuse other Host headers, so a DNS-rebinding page cannot talk to us.
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"])
    app.add_middleware(AccessLog)  # outermost: refused requests are logged too


def _add_routes(app: FastAPI) -> None:
    from lorag.server.routes import config, documents, jobs, models, openai, query

    for module in (query, documents, models, jobs, config, openai):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml",
                            headers={"Cache-Control": "max-age=86400"})

    @app.get("/api/health", tags=["meta"])
    def health(request: Request) -> dict[str, Any]:
        """Liveness check, plus the model queue: depth (questions and background tasks), running, served, busy s."""
        from lorag.rag.store.factory import store_fingerprint, store_location

        state: ServerState = request.app.state.lorag
        return {"status": "ok", "model_queue": state.gate.stats(),
                "store": store_fingerprint(store_location(state.config))}
