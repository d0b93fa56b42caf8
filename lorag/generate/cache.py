"""The one generator cache: one loaded generator per config file, replaced (and closed) when its llm settings change.

Usage::

    gen = generators.get(config, build=build_for_generator)   # loads on first use, then returns the same object
    generators.drop(config)                                    # close it now (the next get loads the model again)
"""

from __future__ import annotations

import json
import logging
import threading

from lorag.config import Config
from lorag.generate.base import Generator
from lorag.generate.generator import BuildFn, load_generator

log = logging.getLogger(__name__)


class GeneratorCache:
    """Loaded generators keyed by config file; the llm settings they were loaded with decide if one is current."""

    def __init__(self) -> None:
        self._slots: dict[str, tuple[str, Generator]] = {}
        self._lock = threading.Lock()

    def get(self, config: Config, build: BuildFn | None = None) -> Generator:
        """The generator for ``config``, loaded now if none is loaded or the llm settings changed."""
        key, settings = _key(config), _settings(config)
        with self._lock:
            slot = self._slots.get(key)
            if slot is not None and slot[0] == settings:
                return slot[1]
            if slot is not None:
                _close(slot[1])
            generator = load_generator(config, build=build)
            self._slots[key] = (settings, generator)
            return generator

    def peek(self, config: Config) -> Generator | None:
        """The generator loaded for ``config``'s file, if any (never loads one)."""
        with self._lock:
            slot = self._slots.get(_key(config))
        return slot[1] if slot is not None else None

    def put(self, config: Config, generator: Generator | None) -> None:
        """Hold ``generator`` as the one loaded for ``config`` (None drops the slot without closing it)."""
        with self._lock:
            if generator is None:
                self._slots.pop(_key(config), None)
            else:
                self._slots[_key(config)] = (_settings(config), generator)

    def drop(self, config: Config) -> None:
        """Close and forget the generator loaded for ``config``'s file; the next ``get`` loads the model again."""
        with self._lock:
            slot = self._slots.pop(_key(config), None)
        if slot is not None:
            _close(slot[1])


def _key(config: Config) -> str:
    return str(config.path)


def _settings(config: Config) -> str:
    return json.dumps(config.settings.llm.model_dump(), sort_keys=True)


def _close(generator: Generator) -> None:
    try:
        generator.close()
    except Exception:  # a failing close must not keep the new model from loading
        log.warning("closing the old generator failed", exc_info=True)


generators = GeneratorCache()
