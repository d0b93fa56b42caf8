"""Build a quantized GGUF from a LoRA adapter as a background job; list, follow and cancel jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from lorag.build.request import STAGES
from lorag.config import QUANT_TYPES
from lorag.server.auth import require_reader, require_token
from lorag.server.jobs import JobManager
from lorag.server.jobstore import FINISHED
from lorag.server.paths import allowed_model_path, model_roots
from lorag.server.routes import get_state
from lorag.server.sse import sse_event, sse_response
from lorag.server.state import ServerState

router = APIRouter(tags=["builds"])
State = Annotated[ServerState, Depends(get_state)]
BUILD_IDENTITY = ("lora_path", "quantization", "mode", "name", "eval_prompts")
FOLLOW_POLL_S = 0.25


class BuildBody(BaseModel):
    """What to build: a LoRA adapter inside models.roots, and how to quantize and register it."""

    lora_path: str = Field(min_length=1, max_length=4096)
    quantization: str | None = Field(None, description=f"one of {', '.join(QUANT_TYPES)}; default build.quantization")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
    mode: Literal["merge", "adapter", "auto"] | None = Field(
        None, description="merge, adapter, or auto (build both, keep the route rule's pick); default build.mode")
    eval_prompts: str | None = Field(
        None, max_length=4096, description="held-out prompts file (JSONL) inside models.roots for the behaviour score")
    register_to: Literal["ollama", "none"] | None = Field(None, alias="register")
    update_config: bool = Field(True, description="switch the config to the built model when the build succeeds")

    model_config = {"populate_by_name": True}

    @field_validator("quantization")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in QUANT_TYPES:
            raise ValueError(f"unknown quantization {value!r}; choose one of {', '.join(QUANT_TYPES)}")
        return value.upper() if value else None


def _jobs(state: ServerState) -> JobManager:
    if state.jobs is None:
        raise RuntimeError("the job manager is not running (app started without its lifespan)")
    return state.jobs


@router.post("/api/quantize-model", status_code=202, dependencies=[Depends(require_token)])
def quantize_model(body: BuildBody, state: State) -> JSONResponse:
    """Queue a build (merge/convert/quantize/register, then switch the config); returns the job at once."""
    config = state.config
    lora = allowed_model_path(config, body.lora_path)
    eval_prompts = allowed_model_path(config, body.eval_prompts) if body.eval_prompts else None
    build = config.settings.build
    params = {
        "config_path": str(config.path),
        "lora_path": str(lora),
        "quantization": body.quantization or build.quantization,
        "name": body.name,
        "mode": body.mode or build.mode,
        "register": body.register_to or build.registry,
        "update_config": body.update_config,
        "eval_prompts": str(eval_prompts) if eval_prompts else None,
        # Over HTTP every file the build reads (the base too, not only the adapter) must lie inside models.roots.
        "roots": [str(root) for root in model_roots(config)],
    }
    job, created = _jobs(state).submit("build", params, BUILD_IDENTITY)
    content = {"job_id": job.id, "shared": not created, "job": job.to_dict()}
    return JSONResponse(content, status_code=202, headers={"Location": f"/api/jobs/{job.id}"})


@router.get("/api/jobs", dependencies=[Depends(require_reader)])
def list_jobs(state: State) -> dict[str, Any]:
    """All jobs, newest first."""
    return {"jobs": [job.to_dict() for job in _jobs(state).store.recent()]}


@router.get("/api/build/stages", dependencies=[Depends(require_reader)])
def build_stages() -> dict[str, list[str]]:
    """The build's stage names in the order a build reports them (the page draws one bar per stage)."""
    return {"stages": list(STAGES)}


@router.get("/api/jobs/{job_id}", dependencies=[Depends(require_reader)])
def get_job(job_id: str, state: State) -> dict[str, Any]:
    """One job: status, parameters, result or error."""
    return _jobs(state).get(job_id).to_dict()


@router.get(
    "/api/jobs/{job_id}/events", dependencies=[Depends(require_reader)],
    responses={200: {"content": {"text/event-stream": {}}}},
)
def job_events(
    job_id: str, state: State, request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    """Progress as SSE: past events first, then new ones until the job finishes."""
    jobs = _jobs(state)
    jobs.get(job_id)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return sse_response(_follow(jobs, job_id, after, request))


async def _follow(jobs: JobManager, job_id: str, after: int, request: Request) -> AsyncIterator[str]:
    while True:
        for event in await run_in_threadpool(jobs.store.events_after, job_id, after):
            after = event["seq"]
            yield sse_event(event.get("type", "progress"), event, event_id=after)
            if event.get("type") == "status" and event.get("status") in FINISHED:
                return
        if await request.is_disconnected():
            return
        await asyncio.sleep(FOLLOW_POLL_S)


@router.post("/api/jobs/{job_id}/cancel", dependencies=[Depends(require_token)])
def cancel_job(job_id: str, state: State) -> dict[str, Any]:
    """Cancel a queued job, or stop a running build (its worker is terminated and temp files removed)."""
    return _jobs(state).cancel(job_id).to_dict()
