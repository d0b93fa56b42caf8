"""The generator contract every LLM backend implements: stream text for a chat or completion request.

Usage::

    gen = load_generator(load_config())
    for piece in gen.stream(GenerationRequest(messages=[{"role": "user", "content": "こんにちは"}])):
        print(piece, end="")
    print(gen.usage)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass
class GenerationRequest:
    """A chat (``messages``) or completion (``prompt``) request; exactly one of them is set."""

    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    max_tokens: int = 384
    temperature: float = 0.2
    top_p: float = 0.95
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("set exactly one of messages or prompt")


@dataclass
class Usage:
    """Token counts of the last request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@runtime_checkable
class Generator(Protocol):
    """One LLM backend.

    ``supports_chat`` is False for base models without a chat template; ``thinks`` is True for models whose
    template opens a ``<think>`` block in the prompt (DeepSeek-R1 style), so the answer follows ``</think>``.
    ``close`` frees what the backend holds (model memory, connections); the generator is unusable afterwards.
    """

    name: str
    supports_chat: bool
    thinks: bool
    usage: Usage

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield the answer text piece by piece; update ``usage`` when done."""
        ...

    def close(self) -> None:
        """Free the model and connections."""
        ...


def complete(generator: Generator, request: GenerationRequest) -> str:
    """Run a request to the end and return the whole text."""
    return "".join(generator.stream(request))
