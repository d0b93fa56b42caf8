"""Progress events and cancellation shared by the build stages."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from lorag.errors import BuildError

ProgressFn = Callable[[dict[str, Any]], None]


class CancelFlag(Protocol):
    """Anything with ``is_set()``, such as ``threading.Event``."""

    def is_set(self) -> bool: ...


class BuildCancelled(BuildError):
    """The build was cancelled; nothing was registered and the config is unchanged."""


class StageProgress:
    """Emits ``{"stage", "percent", "bytes_done", "bytes_total", "message"}`` events for one stage."""

    def __init__(self, sink: ProgressFn | None, stage: str, cancel: CancelFlag | None = None) -> None:
        self.sink = sink
        self.stage = stage
        self.cancel = cancel
        self.started = time.monotonic()

    def update(self, percent: float, bytes_done: int = 0, bytes_total: int = 0, message: str = "") -> None:
        """Report progress (0-100) and stop here if the build was cancelled."""
        self.check_cancel()
        if self.sink is not None:
            self.sink({
                "stage": self.stage, "percent": round(max(0.0, min(100.0, percent)), 1),
                "bytes_done": int(bytes_done), "bytes_total": int(bytes_total), "message": message,
            })

    def fraction(self, done: int, total: int, message: str = "") -> None:
        """Report progress as bytes done out of a total."""
        self.update(100.0 * done / total if total else 100.0, done, total, message)

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise BuildCancelled(f"build cancelled during {self.stage}; nothing was registered.")

    def elapsed(self) -> float:
        return time.monotonic() - self.started
