"""Ollama backend through the official `ollama` Python client (/api/chat and /api/generate, streamed NDJSON).

Usage::

    gen = OllamaGenerator("lorag-ft:q4_k_m", host="http://127.0.0.1:11434")
    for piece in gen.stream(GenerationRequest(messages=[{"role": "user", "content": "こんにちは"}])):
        print(piece, end="")
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lorag.errors import OllamaError
from lorag.generate.base import GenerationRequest, Usage

START_HINT = "Start it with `ollama serve` (or the Ollama app), or set llm.ollama_host to where it runs."


def not_running(host: str) -> OllamaError:
    """The error for an Ollama server that does not answer."""
    return OllamaError(f"Ollama is not running at {host}.", START_HINT)


def show_model(name: str, host: str, timeout: float = 5.0) -> dict[str, Any]:
    """POST /api/show for ``name``: details, model_info, template; OllamaError when unreachable or unknown."""
    import httpx

    try:
        resp = httpx.post(f"{host.rstrip('/')}/api/show", json={"model": name}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise not_running(host) from exc
    if resp.status_code == 404:
        raise OllamaError(f"Ollama at {host} has no model {name!r}.",
                          f"Pull it with `ollama pull {name}`, or build and register one with `lorag model build`.")
    if resp.status_code >= 400:
        raise OllamaError(f"Ollama at {host} answered {resp.status_code} for {name!r}: {resp.text[:200]}")
    data: dict[str, Any] = resp.json()
    return data


class OllamaGenerator:
    """A model served by Ollama; chat goes to /api/chat, plain prompts to /api/generate."""

    def __init__(self, model: str, host: str = "http://127.0.0.1:11434", num_ctx: int = 4096,
                 check: bool = True) -> None:
        from ollama import Client

        self.model, self.host, self.num_ctx = model, host, num_ctx
        self.name = f"ollama:{model}"
        self.usage = Usage()
        self._client = Client(host=host)
        self.supports_chat = True
        if check:
            show = show_model(model, host)
            self.supports_chat = bool(show.get("template")) or "completion" in (show.get("capabilities") or [])

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
        import httpx
        from ollama import ResponseError

        self.usage = Usage()
        try:
            if request.messages is not None:
                chunks: Any = self._client.chat(model=self.model, messages=request.messages, stream=True,
                                           options=self._options(request))
                yield from self._pieces(chunks, lambda c: (c.get("message") or {}).get("content"))
            else:
                chunks = self._client.generate(model=self.model, prompt=request.prompt or "", stream=True,
                                               options=self._options(request))
                yield from self._pieces(chunks, lambda c: c.get("response"))
        except (httpx.HTTPError, ConnectionError) as exc:
            raise not_running(self.host) from exc
        except ResponseError as exc:
            raise OllamaError(f"Ollama at {self.host} failed for {self.model!r}: {exc.error}",
                              f"Check `ollama list` has {self.model}.") from exc

    def _pieces(self, chunks: Any, text_of: Any) -> Iterator[str]:
        for chunk in chunks:
            data = chunk if isinstance(chunk, dict) else chunk.model_dump()
            if data.get("error"):
                raise OllamaError(f"Ollama at {self.host} failed for {self.model!r}: {data['error']}")
            text = text_of(data)
            if text:
                yield text
            if data.get("done"):
                self.usage.prompt_tokens = int(data.get("prompt_eval_count") or 0)
                self.usage.completion_tokens = int(data.get("eval_count") or 0)
