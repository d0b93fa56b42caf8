"""The build pipeline: LoRA adapter → (merged) GGUF → quantized → Modelfile → Ollama → config switched.

``run_build`` enters each stage once, in ``STAGES`` order: validate (``plan_build``), then one route (merge,
convert, quantize, verify inside it), then ``finish`` (modelfile, register, config). Mode "auto" builds the
adapter candidate and the merged one (each cached on its own), keeps the one ``choose_route`` picks, and finishes
only that one.

Usage::

    result = run_build(load_config(), BuildRequest(lora_path=Path("outputs/lora_X"), register="ollama",
                                                   update_config=True))
    print(result.to_dict())
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorag.atomic import TMP_PREFIX, atomic_write_text
from lorag.build.behaviour_stage import SharedReference, behaviour_is_current, rescore
from lorag.build.cache import build_lock
from lorag.build.choice import candidate_of, choose_route
from lorag.build.eval_prompts import inside_roots
from lorag.build.finish import finish
from lorag.build.progress import CancelFlag, ProgressFn, StageProgress
from lorag.build.request import BuildPlan, BuildRequest, BuildResult, timed
from lorag.build.routes.adapter import AdapterRoute
from lorag.build.routes.base import Route, Workspace
from lorag.build.routes.reference import ReferenceRoute
from lorag.build.routes.single_pass import SinglePassRoute
from lorag.build.validate import check_before_building, plan_build
from lorag.errors import BuildError, LoragError, PathNotAllowedError

if TYPE_CHECKING:
    from lorag.config import Config

__all__ = ["BuildRequest", "BuildResult", "routes_for", "run_build"]
log = logging.getLogger(__name__)


def run_build(
    config: Config, request: BuildRequest, progress: ProgressFn | None = None, cancel: CancelFlag | None = None,
) -> BuildResult:
    """Run every stage; on any failure nothing is registered, no artifact appears and the config is unchanged."""
    if request.mode == "auto":
        return _run_auto(config, request, progress, cancel)
    timings: dict[str, float] = {}
    shared = SharedReference()
    try:
        plan, record, hit = _candidate(config, request, shared, timings, progress, cancel)
        with build_lock(plan.output_dir, plan.dir_name):
            result = finish(config, request, plan, record, timings, progress, cancel)
    finally:
        if shared.hf is not None:
            shared.hf.release()
    result.cache_hit = hit
    return result


def _candidate(config: Config, request: BuildRequest, shared: SharedReference, timings: dict[str, float],
               progress: ProgressFn | None, cancel: CancelFlag | None) -> tuple[BuildPlan, dict[str, Any], bool]:
    """Plan, then build (or load the cached build of) one mode; a cached build's stale behaviour score is redone."""
    with timed(timings, "validate"):
        plan = plan_build(config, request, StageProgress(progress, "validate", cancel))
        plan.eval_prompts, plan.roots = _eval_prompts(config, request), tuple(request.roots)
        plan.shared = shared
    with build_lock(plan.output_dir, plan.dir_name):
        record = _load_cached(plan.final_dir)
        if record is None:
            return plan, _build_into_place(plan, timings, progress, cancel), False
        StageProgress(progress, "validate", cancel).update(100, message=f"cache hit: {plan.final_dir}")
        if not behaviour_is_current(plan, record):
            with timed(timings, "verify"):
                if rescore(plan, record, StageProgress(progress, "verify", cancel)):
                    atomic_write_text(plan.final_dir / "build.json",
                                      json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return plan, record, True


def _eval_prompts(config: Config, request: BuildRequest) -> Path | None:
    raw = request.eval_prompts or config.settings.build.eval_prompts
    if not raw:
        return None
    path = Path(raw).expanduser().absolute()
    if request.roots and not inside_roots(path, request.roots):
        raise PathNotAllowedError(f"the eval prompts file {path} resolves to {path.resolve()}, which is outside "
                                  "models.roots.", "Move it inside models.roots, or add its folder there.")
    return path


def _run_auto(config: Config, request: BuildRequest, progress: ProgressFn | None,
              cancel: CancelFlag | None) -> BuildResult:
    """Build both candidates (adapter first: its F16 base + LoRA is the reference for both), keep the rule's pick."""
    timings: dict[str, float] = {}
    shared = SharedReference()
    built: dict[str, tuple[BuildPlan, dict[str, Any], bool]] = {}
    skipped: list[str] = []
    try:
        for mode in ("adapter", "merge"):
            own: dict[str, float] = {}  # each candidate's build.json keeps its own stage times
            try:
                built[mode] = _candidate(config, replace(request, mode=mode), shared, own, progress, cancel)
                for stage, seconds in own.items():
                    timings[stage] = timings.get(stage, 0.0) + seconds
            except BuildError as exc:
                if mode == "merge" or (not built and "GGUF LoRA" not in exc.message):
                    raise
                skipped.append(f"{mode} candidate not built: {exc.message}")
    finally:
        if shared.hf is not None:
            shared.hf.release()
    order = [m for m in ("merge", "adapter") if m in built]
    choice = choose_route([candidate_of(m, built[m][1].get("fidelity") or {}) for m in order],
                          config.settings.build.agreement_tolerance)
    plan, record, hit = built[choice.chosen.name]
    with build_lock(plan.output_dir, plan.dir_name):
        result = finish(config, request, plan, record, timings, progress, cancel)
    result.cache_hit, result.mode = hit, plan.mode
    result.route_choice = choice.to_dict()
    for row in result.route_choice["candidates"]:
        p, rec, was_hit = built[row["name"]]
        row.update({"gguf": str(p.final_dir / rec["gguf"]), "size_bytes": rec.get("size_bytes"), "cache_hit": was_hit,
                    "adapter_gguf": str(p.final_dir / rec["adapter_gguf"]) if rec.get("adapter_gguf") else None})
    result.route_choice["skipped"] = skipped
    result.warnings.extend(skipped)
    return result


def routes_for(plan: BuildPlan) -> list[Route]:
    """The routes to try, in order: the first that returns a record builds the plan."""
    if plan.mode == "adapter":
        return [AdapterRoute()]
    return [SinglePassRoute(), ReferenceRoute()]


def build_artifacts(plan: BuildPlan, tmp: Path, timings: dict[str, float], progress: ProgressFn | None = None,
                    cancel: CancelFlag | None = None) -> dict[str, Any]:
    """Produce the GGUF(s) in ``tmp`` with the first route that takes the plan; return the build.json record."""
    ws = Workspace(plan, tmp, timings, progress, cancel)
    record = next((r for r in (route.build(ws) for route in routes_for(plan)) if r is not None), None)
    if record is None:
        raise BuildError(f"no build route can build {plan.adapter_dir} in mode {plan.mode}.",
                         "Set build.route: auto, or use --mode merge.")
    record.update({"key": plan.key, "mode": plan.mode, "quantization": plan.qtype, "base": str(plan.base_dir),
                   "adapter": str(plan.adapter_dir), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "build_stages": {k: round(v, 3) for k, v in timings.items()}})
    return record


def _build_into_place(plan: BuildPlan, timings: dict[str, float], progress: ProgressFn | None,
                      cancel: CancelFlag | None) -> dict[str, Any]:
    # build.json existed at validation but the artifact is gone (deleted GGUF): run the checks skipped then.
    check_before_building(plan, StageProgress(progress, "validate", cancel))
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{plan.dir_name}-", dir=plan.output_dir))
    try:
        record = build_artifacts(plan, tmp, timings, progress, cancel)
        atomic_write_text(tmp / "build.json", json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        if plan.final_dir.exists():  # an incomplete leftover (no build.json): replace it
            shutil.rmtree(plan.final_dir)
        _share(tmp)
        tmp.rename(plan.final_dir)
    except LoragError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BuildError(f"writing the build files failed: {exc.strerror or exc} ({exc.filename or plan.output_dir}).",
                         "Check free disk space and permissions of the output directory.") from exc
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        log.debug("build failed", exc_info=True)
        raise BuildError(f"the build failed unexpectedly: {type(exc).__name__}: {exc}",
                         "Run with -v to see details, and report it.") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record


def _share(directory: Path) -> None:
    # mkdtemp/mkstemp create private (0700/0600) entries; artifacts are meant to be readable like any model file.
    directory.chmod(0o755)
    for entry in directory.iterdir():
        entry.chmod(0o644 if entry.is_file() else 0o755)


def _load_cached(final_dir: Path) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads((final_dir / "build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (final_dir / record.get("gguf", "\0")).is_file():
        return None
    return record
