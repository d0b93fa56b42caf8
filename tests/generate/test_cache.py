"""The one generator cache: one generator per config file, replaced and closed when the llm settings change."""

from __future__ import annotations

from pathlib import Path

from lorag.config import load_config, update_config
from lorag.generate.cache import GeneratorCache
from lorag.generate.openai import OpenAIGenerator


def _openai(config_file: Path, model: str) -> Path:
    update_config(config_file, {"llm.backend": "openai", "llm.model": model,
                                "llm.openai_base_url": "http://127.0.0.1:9/v1"})
    return config_file


def test_same_settings_same_generator_and_changes_close_the_old_one(config_file: Path) -> None:
    cache = GeneratorCache()
    config = load_config(_openai(config_file, "first"))
    first = cache.get(config)
    assert isinstance(first, OpenAIGenerator) and cache.get(load_config(config_file)) is first
    assert cache.peek(config) is first
    second = cache.get(load_config(_openai(config_file, "second")))
    assert second is not first and second.name == "openai:second"
    assert first._client.is_closed()  # closed when it was replaced
    cache.drop(config)
    assert cache.peek(config) is None and second._client.is_closed()


def test_put_holds_a_generator_without_loading(config_file: Path) -> None:
    cache = GeneratorCache()
    config = load_config(_openai(config_file, "held"))
    held = OpenAIGenerator("held", "http://127.0.0.1:9/v1")
    cache.put(config, held)
    assert cache.get(config) is held
    cache.put(config, None)
    assert cache.peek(config) is None and not held._client.is_closed()
