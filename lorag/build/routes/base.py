"""The contract every build route honours: one method, ``build(workspace) -> record | None``.

A route turns a checked ``BuildPlan`` into GGUF files inside the workspace's private temporary folder and returns
the build record (what ``build.json`` keeps), or None when it cannot build this plan, so the pipeline tries the
next route. The pipeline owns everything around it: the lock, the temporary folder, the move into place, the cache.

Usage::

    class CopyRoute:
        name = "copy"

        def build(self, ws: Workspace) -> dict[str, Any] | None:
            out = ws.tmp / "model-F16.gguf"
            ...
            return {"gguf": out.name, "sha256": {...}, "size_bytes": out.stat().st_size, "fidelity": {}}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lorag.build.progress import CancelFlag, ProgressFn, StageProgress
from lorag.build.request import BuildPlan, timed


@dataclass
class Workspace:
    """What a route works with: the plan, its private temp folder, the stage timings, progress and cancellation."""

    plan: BuildPlan
    tmp: Path
    timings: dict[str, float]
    progress: ProgressFn | None = None
    cancel: CancelFlag | None = None

    def stage(self, name: str) -> StageProgress:
        """Progress reporter for one stage (raises BuildCancelled when the build was cancelled)."""
        return StageProgress(self.progress, name, self.cancel)

    def timed(self, name: str) -> Any:
        """Context manager adding the block's wall time to stage ``name``."""
        return timed(self.timings, name)


class Route(Protocol):
    """One way from a checked plan to GGUF files."""

    name: str

    def build(self, ws: Workspace) -> dict[str, Any] | None:
        """Write the GGUF(s) into ``ws.tmp`` and return the build record; None when this route cannot build it."""
        ...
