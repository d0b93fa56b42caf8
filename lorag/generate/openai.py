"""Any OpenAI-compatible HTTP server (vLLM, llama.cpp's server, LM Studio…) through the `openai` client, streamed.

Usage::

    gen = OpenAIGenerator("my-model", base_url="http://127.0.0.1:8080/v1")
    print(complete(gen, GenerationRequest(messages=[{"role": "user", "content": "こんにちは"}])))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lorag.errors import GenerationError
from lorag.generate.base import GenerationRequest, Usage


class OpenAIGenerator:
    """Chat goes to /v1/chat/completions, plain prompts to /v1/completions; both streamed."""

    thinks = False

    def __init__(self, model: str, base_url: str, api_key: str = "", timeout: float = 120.0) -> None:
        from openai import OpenAI, Timeout

        if not base_url:
            raise GenerationError("llm.backend is openai but llm.openai_base_url is empty.",
                                  "Set it to the server's URL, e.g. http://127.0.0.1:8080/v1.")
        self.model, self.base_url = model, base_url
        self.name = f"openai:{model}"
        self.usage = Usage()
        self.supports_chat = True
        # The openai client insists on a key; local servers ignore it.
        # A server that accepts the connection and then stays silent fails after ``timeout`` seconds without a
        # token (streamed: between tokens), not after ten minutes; an unreachable one fails within seconds.
        limits = Timeout(timeout, connect=10.0)
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=limits, max_retries=0)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _args(self, request: GenerationRequest) -> dict[str, Any]:
        args: dict[str, Any] = {"model": self.model, "max_tokens": request.max_tokens, "stream": True,
                                "temperature": request.temperature, "top_p": request.top_p,
                                "stream_options": {"include_usage": True}}
        if request.stop:
            args["stop"] = request.stop
        if request.seed is not None:
            args["seed"] = request.seed
        return args

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield text deltas; ``usage`` comes from the final usage chunk when the server sends one."""
        import openai

        self.usage = Usage()
        try:
            if request.messages is not None:
                chunks = self._client.chat.completions.create(messages=request.messages,  # type: ignore[call-overload,arg-type]
                                                              **self._args(request))
                yield from self._pieces(chunks, lambda c: c.choices[0].delta.content if c.choices else None)
            else:
                chunks = self._client.completions.create(prompt=request.prompt or "",  # type: ignore[call-overload,arg-type]
                                                         **self._args(request))
                yield from self._pieces(chunks, lambda c: c.choices[0].text if c.choices else None)
        except openai.APIConnectionError as exc:
            raise GenerationError(f"no OpenAI-compatible server answers at {self.base_url}.",
                                  "Start the server, or fix llm.openai_base_url.") from exc
        except openai.APIStatusError as exc:
            raise GenerationError(f"the server at {self.base_url} answered {exc.status_code}: {exc.message}",
                                  f"Check that it serves the model {self.model!r}.") from exc

    def _pieces(self, chunks: Any, text_of: Any) -> Iterator[str]:
        pieces = 0
        for chunk in chunks:
            text = text_of(chunk)
            if text:
                pieces += 1
                yield text
            if getattr(chunk, "usage", None):
                self.usage.prompt_tokens = int(chunk.usage.prompt_tokens or 0)
                self.usage.completion_tokens = int(chunk.usage.completion_tokens or 0)
        if not self.usage.completion_tokens:
            self.usage.completion_tokens = pieces
