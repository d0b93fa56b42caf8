"""Record what the server sends to its real model: a wrapper around the loaded generator, for assertions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lorag.generate.base import GenerationRequest, Generator


class RecordingGenerator:
    """Delegates to a real generator; keeps every request and counts the pieces the server pulled."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.name = inner.name
        self.supports_chat = inner.supports_chat
        self.thinks = inner.thinks
        self.requests: list[GenerationRequest] = []
        self.pieces = 0

    @property
    def usage(self) -> Any:
        return self.inner.usage

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        self.requests.append(request)
        for piece in self.inner.stream(request):
            self.pieces += 1
            yield piece


@contextmanager
def recording(live: Any) -> Iterator[RecordingGenerator]:
    """Wrap ``live``'s generator for the duration of the block."""
    state = live.state
    real = state.generator()
    wrapper = RecordingGenerator(real)
    state._generator = wrapper
    try:
        yield wrapper
    finally:
        state._generator = real
