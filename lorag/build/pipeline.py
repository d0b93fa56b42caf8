"""The build pipeline: LoRA adapter → (merged) GGUF → quantized → Modelfile → Ollama → config switched.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lorag.atomic import TMP_PREFIX, atomic_write_text
from lorag.errors import BuildError, LoragError
from lorag.models.progress import CancelFlag, ProgressFn, StageProgress

if TYPE_CHECKING:
    from lorag.config import Config

log = logging.getLogger(__name__)

STAGES = ("validate", "merge", "convert", "quantize", "verify", "modelfile", "register", "config")


@dataclass
class BuildRequest:
    """What to build: the adapter, optional base, quantization, name, mode and what to do with the result."""

    lora_path: Path
    base: Path | None = None
    quantization: str = "Q4_K_M"
    name: str | None = None
    mode: Literal["merge", "adapter"] = "merge"
    register: Literal["ollama", "none"] = "none"
    ollama_host: str | None = None
    update_config: bool = False
    output_dir: Path | None = None


@dataclass
class BuildResult:
    """Where the artifacts are, how long each stage took, how faithful the GGUF is, and what was switched."""

    gguf: Path
    modelfile: Path
    quantization: str
    size_bytes: int
    stages: dict[str, float] = field(default_factory=dict)
    fidelity: dict[str, Any] = field(default_factory=dict)
    registered_as: str | None = None
    config_updated: bool = False
    cache_hit: bool = False
    adapter_gguf: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gguf": str(self.gguf), "modelfile": str(self.modelfile), "quantization": self.quantization,
            "size_bytes": self.size_bytes, "stages": {k: round(v, 3) for k, v in self.stages.items()},
            "fidelity": self.fidelity, "registered_as": self.registered_as, "config_updated": self.config_updated,
            "cache_hit": self.cache_hit, "adapter_gguf": str(self.adapter_gguf) if self.adapter_gguf else None,
            "warnings": self.warnings,
        }


def disk_free(path: Path) -> int:
    """Free bytes on the filesystem holding ``path`` (tests replace this to simulate a full disk)."""
    return shutil.disk_usage(path).free


def run_build(
    config: Config, request: BuildRequest, progress: ProgressFn | None = None, cancel: CancelFlag | None = None,
) -> BuildResult:
    """Run every stage; on any failure nothing is registered, no artifact appears and the config is unchanged."""
    from lorag.models.cache import build_lock
    from lorag.models.stages import Plan, build_artifacts, finish, plan_build

    timings: dict[str, float] = {}
    with _timed(timings, "validate"):
        plan: Plan = plan_build(config, request, StageProgress(progress, "validate", cancel))
    with build_lock(plan.output_dir, plan.dir_name):
        cached = _load_cached(plan.final_dir)
        if cached is None:
            cached = _build_into_place(plan, timings, progress, cancel, build_artifacts)
            hit = False
        else:
            hit = True
            StageProgress(progress, "validate", cancel).update(100, message=f"cache hit: {plan.final_dir}")
        result = finish(config, request, plan, cached, timings, progress, cancel)
    result.cache_hit = hit
    return result


def _build_into_place(plan: Any, timings: dict[str, float], progress: ProgressFn | None,
                      cancel: CancelFlag | None, builder: Any) -> dict[str, Any]:
    from lorag.models.validate import check_before_building

    # build.json existed at validation but the artifact is gone (deleted GGUF): run the checks skipped then.
    check_before_building(plan, StageProgress(progress, "validate", cancel))
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{plan.dir_name}-", dir=plan.output_dir))
    try:
        record: dict[str, Any] = builder(plan, tmp, timings, progress, cancel)
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


class _timed:
    """Context manager that adds a stage's wall time to ``timings``."""

    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.start = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + time.monotonic() - self.start


def timed(timings: dict[str, float], stage: str) -> _timed:
    """Time a stage into ``timings`` (used by the stage functions)."""
    return _timed(timings, stage)


def require(condition: bool, message: str, hint: str = "") -> None:
    """Raise BuildError(message, hint) unless ``condition``."""
    if not condition:
        raise BuildError(message, hint)
