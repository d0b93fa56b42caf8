"""Ollama backend over lorag's own Ollama client (/api/chat and /api/generate, streamed NDJSON).

Usage::

    gen = OllamaGenerator("lorag-ft:q4_k_m", host="http://127.0.0.1:11434")
    for piece in gen.stream(GenerationRequest(messages=[{"role": "user", "content": "こんにちは"}])):
        print(piece, end="")
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lorag.generate.base import GenerationRequest, Usage
from lorag.registry.ollama import DEFAULT_HOST, OllamaClient


class OllamaGenerator:
    """A model served by Ollama; chat goes to /api/chat, plain prompts to /api/generate."""

    thinks = False

    def __init__(self, model: str, host: str = DEFAULT_HOST, num_ctx: int = 4096, check: bool = True) -> None:
        self.model, self.host, self.num_ctx = model, host, num_ctx
        self.name = f"ollama:{model}"
        self.usage = Usage()
        self._client = OllamaClient(host)
        self.supports_chat = True
        if check:
            show = self._client.show(model)
            self.supports_chat = bool(show.get("template")) or "completion" in (show.get("capabilities") or [])

    def close(self) -> None:
        """Close the HTTP connection pool (Ollama keeps the model loaded on its side)."""
        self._client.close()

    def _options(self, request: GenerationRequest) -> dict[str, Any]:
        options: dict[str, Any] = {"num_predict": request.max_tokens, "temperature": request.temperature,
                                   "top_p": request.top_p, "num_ctx": self.num_ctx}
        if request.stop:
            options["stop"] = request.stop
        if request.seed is not None:
            options["seed"] = request.seed
        return options

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield the reply piece by piece; ``usage`` comes from the final NDJSON line's counts."""
        self.usage = Usage()
        body: dict[str, Any] = {"model": self.model, "stream": True, "options": self._options(request)}
        if request.messages is not None:
            events = self._client.stream("/api/chat", {**body, "messages": request.messages}, f"for {self.model!r}")
            yield from self._pieces(events, lambda e: (e.get("message") or {}).get("content"))
        else:
            events = self._client.stream("/api/generate", {**body, "prompt": request.prompt or ""},
                                         f"for {self.model!r}")
            yield from self._pieces(events, lambda e: e.get("response"))

    def _pieces(self, events: Iterator[dict[str, Any]], text_of: Any) -> Iterator[str]:
        for event in events:
            text = text_of(event)
            if text:
                yield str(text)
            if event.get("done"):
                self.usage.prompt_tokens = int(event.get("prompt_eval_count") or 0)
                self.usage.completion_tokens = int(event.get("eval_count") or 0)

