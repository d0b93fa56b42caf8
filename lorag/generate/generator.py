"""LLMGenerator: read the config, decide which backend runs the model, and load it.

(Interim version: embedded llama.cpp with the configured GGUF or the bundled Gemma 3 270M.
The model-planning work replaces the body of `load_generator`, keeping its signature.)
"""

from __future__ import annotations

from lorag.config import Config
from lorag.generate.base import Generator


def load_generator(config: Config) -> Generator:
    """Return a ready generator for ``config.settings.llm``."""
    from lorag.generate.llamacpp import LlamaCppGenerator, bundled_model_path

    llm = config.settings.llm
    model = config.resolve(llm.model) if llm.model else bundled_model_path()
    adapter = config.resolve(llm.adapter) if llm.adapter else None
    return LlamaCppGenerator(model, lora_path=adapter, n_ctx=llm.context, threads=llm.threads)
