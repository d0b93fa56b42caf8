"""What the running server holds: the current config, the loaded generator, the model gate and the jobs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorag.config import Config, load_config
from lorag.server.gate import ModelGate
from lorag.server.uploads import UploadIndex

if TYPE_CHECKING:
    from lorag.generate.base import Generator
    from lorag.server.jobs import JobManager
    from lorag.server.jobstore import Job

log = logging.getLogger(__name__)


class ServerState:
    """Shared state of one app; the generator loads lazily and is dropped whenever the model config changes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.gate = ModelGate()
        self.jobs: JobManager | None = None
        self._uploads: UploadIndex | None = None
        self.plan_cache: dict[str, tuple[float, dict[str, Any]]] = {}

    @property
    def uploads(self) -> UploadIndex:
        """The index of uploaded files (under the current config's data dir)."""
        data_dir = self.config.data_dir
        if self._uploads is None or self._uploads.folder != data_dir / "uploads":
            self._uploads = UploadIndex(data_dir / "uploads", data_dir / "uploads.db")
        return self._uploads

    def name_sources(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add a display ``name`` to hits or citations: the original upload name, else the file name."""
        names = self.uploads.original_names()
        return [{**item, "name": names.get(item["source"], Path(item["source"]).name)} for item in items]

    def collection_names(self) -> list[str]:
        """The collections of the store, sorted ("default" when documents were added without one)."""
        from lorag.rag.store import Store

        if not self.config.store_path.exists():
            return []
        with Store(self.config.store_path) as store:
            listing = getattr(store, "collections", None)
            if callable(listing):
                return sorted({_name_of(c) for c in listing()})
            return sorted({getattr(d, "collection", "default") for d in store.list_documents()})

    def generator(self) -> Generator:
        """The generator for the current config, loaded on first use (call it on the model thread)."""
        from lorag.build.auto import build_for_generator
        from lorag.generate.cache import generators

        return generators.get(self.config, build=build_for_generator)

    @property
    def _generator(self) -> Generator | None:
        """The generator loaded for this config, if any (held by lorag.generate.cache)."""
        from lorag.generate.cache import generators

        return generators.peek(self.config)

    @_generator.setter
    def _generator(self, value: Generator | None) -> None:
        from lorag.generate.cache import generators

        generators.put(self.config, value)

    def set_config(self, config: Config) -> None:
        """Adopt a new config; the next query loads the model it names."""
        model_changed = config.settings.llm != self.config.settings.llm
        self.config = config
        if model_changed:
            self.drop_generator()

    def reload_config(self) -> None:
        """Re-read the config file (after a build switched the model)."""
        self.set_config(load_config(self.config.path))

    def drop_generator(self) -> None:
        """Close the loaded generator; the next query loads the configured model again."""
        from lorag.generate.cache import generators

        generators.drop(self.config)

    def after_build(self, job: Job) -> None:
        """A build finished: pick up the config it wrote and drop the old model."""
        self.reload_config()
        self.drop_generator()


def _name_of(collection: Any) -> str:
    """A collection's name, whether the store lists names, mappings or objects."""
    if isinstance(collection, str):
        return collection
    if isinstance(collection, dict):
        return str(collection["name"])
    return str(getattr(collection, "name", collection))
