"""The build's value types: what to build, the checked plan, the result, the stage names, and stage timing.

Every other build module imports from here and nothing here imports them, so the stages, the routes and the
pipeline can each be read on their own.

Usage::

    request = BuildRequest(lora_path=Path("outputs/lora_X"), quantization="Q4_K_M", register="ollama")
    with timed(timings, "merge"):
        ...
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lorag.errors import BuildError

if TYPE_CHECKING:
    from lorag.build.merge import AdapterWeights
    from lorag.inspect.adapter import AdapterInfo

# What to do when Ollama cannot be reached during a build.
REGISTER_HINT = ("Start it with `ollama serve` (or set --ollama-host / llm.ollama_host), "
                 "or build with --register none.")
# Every build reports these stages in this order (the CLI's bars and the web page's list read this tuple).
STAGES = ("validate", "merge", "convert", "quantize", "verify", "modelfile", "register", "config")


@dataclass
class BuildRequest:
    """What to build: the adapter, optional base, quantization, name, mode and what to do with the result."""

    lora_path: Path
    base: Path | None = None
    quantization: str = "Q4_K_M"
    name: str | None = None
    mode: Literal["merge", "adapter", "auto"] = "merge"  # auto: build both, keep the one the route rule picks
    register: Literal["ollama", "none"] = "none"
    ollama_host: str | None = None
    update_config: bool = False
    output_dir: Path | None = None
    roots: tuple[Path, ...] = ()  # when set (requests over HTTP), every file the build reads must lie inside
    eval_prompts: Path | None = None  # held-out prompts for the behaviour score (default: found beside the adapter)


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
    behaviour: dict[str, Any] = field(default_factory=dict)
    mode: str = "merge"
    route_choice: dict[str, Any] = field(default_factory=dict)  # auto mode: every candidate, the rule, the pick

    def to_dict(self) -> dict[str, Any]:
        return {
            "gguf": str(self.gguf), "modelfile": str(self.modelfile), "quantization": self.quantization,
            "size_bytes": self.size_bytes, "stages": {k: round(v, 3) for k, v in self.stages.items()},
            "fidelity": self.fidelity, "registered_as": self.registered_as, "config_updated": self.config_updated,
            "cache_hit": self.cache_hit, "adapter_gguf": str(self.adapter_gguf) if self.adapter_gguf else None,
            "warnings": self.warnings, "behaviour": self.behaviour, "mode": self.mode,
            "route_choice": self.route_choice,
        }


def disk_free(path: Path) -> int:
    """Free bytes on the filesystem holding ``path`` (tests replace this to simulate a full disk)."""
    return shutil.disk_usage(path).free


@dataclass
class BuildPlan:
    """Everything the later stages need, decided and checked up front."""

    adapter_dir: Path
    base_dir: Path
    info: AdapterInfo
    qtype: str
    mode: str
    dir_name: str
    ollama_name: str
    output_dir: Path
    final_dir: Path
    key: str
    base_hash: str
    base_bytes: int
    settings: Any = None
    weights: AdapterWeights | None = None  # loaded (and checked) only when the artifact is not cached
    notes: list[str] = field(default_factory=list)
    eval_prompts: Path | None = None
    roots: tuple[Path, ...] = ()  # the request's roots: a found eval file outside them is not read
    shared: Any = None  # behaviour_stage.SharedReference: one reference model and output set for every candidate


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
