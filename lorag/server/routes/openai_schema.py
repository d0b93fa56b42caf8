"""The chat completion request lorag accepts under /v1, and the checks that turn unsupported input into a 400.

Unknown fields are ignored, as OpenAI's own API does for fields a model does not use (``tools``,
``logprobs``, ``user``, ``metadata``…). What lorag cannot honour is refused, never dropped silently: ``n > 1``,
image / audio / file content parts, ``tool`` messages, a last user turn over ``MAX_QUESTION_CHARS``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lorag.errors import LoragError
from lorag.limits import MAX_QUESTION_CHARS

TEXT_ROLES = ("system", "developer", "user", "assistant")
MAX_MESSAGES = 10_000  # a long conversation is cut from its oldest turns; this only bounds the parsing work


class OpenAIRequestError(LoragError):
    """A chat request lorag cannot honour; ``param`` names the field, as OpenAI's errors do."""

    def __init__(self, message: str, param: str, code: str = "unsupported_value") -> None:
        super().__init__(message)
        self.param, self.code = param, code


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str = Field(max_length=32)
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """The part of OpenAI's chat completion request that lorag honours (other fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=512)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(None, ge=1, le=32768)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(None, ge=1, le=128)
    metadata: dict[str, Any] | None = None

    @property
    def limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def turns(self) -> list[dict[str, str]]:
        """The conversation as plain text turns (``developer`` counts as ``system``)."""
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in self.messages]


def check_supported(body: ChatRequest) -> None:
    """Refuse what lorag cannot do with a 400 that names the field."""
    if body.n is not None and body.n > 1:
        raise OpenAIRequestError(f"n={body.n} is not supported: lorag returns one choice per request. "
                                 "Send n=1 (or leave n out) and repeat the request for more answers.", "n")
    for i, message in enumerate(body.messages):
        if message.role not in TEXT_ROLES:
            raise OpenAIRequestError(
                f"messages[{i}] has role {message.role!r}: lorag does not call tools, so it cannot take tool "
                "results. Send the text as a user message instead.", f"messages[{i}].role")
        for j, part in enumerate(message.content if isinstance(message.content, list) else []):
            kind = part.get("type")
            if kind != "text":
                raise OpenAIRequestError(
                    f"messages[{i}].content[{j}] is of type {kind!r}: lorag's models read text only. "
                    "Send the text parts only.", f"messages[{i}].content[{j}].type")
    last = next((m for m in reversed(body.messages) if m.role == "user"), None)
    if last is not None and len(last.text()) > MAX_QUESTION_CHARS:
        raise OpenAIRequestError(
            f"the last user message has {len(last.text()):,} characters; the limit is {MAX_QUESTION_CHARS:,}. "
            "Shorten the question (put long text into a document and ingest it).", "messages",
            "string_above_max_length")
