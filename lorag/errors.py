"""User-facing errors: each says what went wrong and what to do next."""

from __future__ import annotations


class LoragError(Exception):
    """Base class for errors shown to the user as one line, never as a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class ConfigError(LoragError):
    """The configuration file or an override is invalid."""


class IngestError(LoragError):
    """A document could not be read or indexed."""


class StoreError(LoragError):
    """The document store cannot be opened or written."""


class ModelError(LoragError):
    """A model path is missing, malformed or inconsistent."""


class AdapterError(ModelError):
    """A LoRA adapter is missing, malformed or does not match its base."""


class PlanError(ModelError):
    """No way of running the model fits this machine."""


class BuildError(LoragError):
    """The build pipeline failed; nothing was registered and the config is unchanged."""


class DiskSpaceError(BuildError):
    """Not enough free disk space for a build."""


class OllamaError(LoragError):
    """Ollama is unreachable or answered with an error."""


class GenerationError(LoragError):
    """The language model backend failed to load or to generate."""


class PathNotAllowedError(LoragError):
    """A path resolves outside the configured roots."""
