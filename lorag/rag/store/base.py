"""The store contract: documents, chunks, a lexical and a dense index, collections and a revision counter.

Two peers implement it, chosen by ``store.url``: SQLite (one file, the default) and PostgreSQL + pgvector.
``Store(path_or_url)`` picks the backend the way ``pathlib.Path`` picks its flavour, so existing callers that
pass a file path keep working.

Usage::

    with open_store(config) as store:
        for doc in store.list_documents(collection="人事"):
            print(doc.path, doc.n_chunks)
        print(store.lexical_search(["有給", "休暇"], 5))
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from lorag.errors import LoragError, StoreError
from lorag.limits import MAX_COLLECTION_CHARS

DEFAULT_COLLECTION = "default"
TOKEN_SEP = "\x1f"  # tokens never contain this control character
Ranking = list[tuple[int, float]]  # (chunk id, score), best first
LUCENE_K1, LUCENE_B = 1.5, 0.75
LEXICAL_CANDIDATES = 200  # chunks the backend's index proposes for BM25 scoring (more when k is larger)
CANDIDATE_POSTINGS = 4_000  # postings the index may read to find them (see _candidate_terms)
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class DocumentRow:
    """One ingested file."""

    id: int
    path: str
    sha256: str
    n_chunks: int
    added_at: str
    mtime: float = 0.0
    size: int = 0
    collection: str = DEFAULT_COLLECTION
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> DocumentRow:
        """The document in a row of (id, path, sha256, n_chunks, added_at, mtime, size, collection, meta JSON)."""
        return cls(int(row[0]), row[1], row[2], int(row[3]), row[4], float(row[5]), int(row[6]),
                   collection=row[7], meta=json.loads(row[8] or "{}"))


def now_iso() -> str:
    """The time a document is added, in UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Chunk:
    """One stored chunk with where it came from (``start``/``end`` index the page text)."""

    id: int
    doc_id: int
    source: str
    page: int | None
    start: int
    end: int
    text: str
    page_label: str | None = None


@dataclass(frozen=True)
class NewChunk:
    """A chunk about to be stored, with its BM25 tokens and (optional) vector."""

    text: str
    page: int | None
    start: int
    end: int
    tokens: list[str]
    vector: np.ndarray | None = None
    page_label: str | None = None  # the printed page label (PDF /PageLabels), when it differs from the index


# The peers by URL scheme, looked up by name so this contract never imports its implementations.
BACKENDS = {"sqlite": "lorag.rag.store.sqlite:SQLiteStore", "postgresql": "lorag.rag.store.postgres:PostgresStore",
            "postgres": "lorag.rag.store.postgres:PostgresStore"}


def is_postgres(location: Path | str) -> bool:
    return isinstance(location, str) and location.split("://", 1)[0] in ("postgresql", "postgres")


def backend_for(location: Path | str | None) -> type[Store]:
    """The Store class for ``location`` (a file path or ``sqlite://`` URL, or a ``postgresql://`` URL)."""
    import importlib

    if location is None:
        raise StoreError("no store location was given.", "Pass a file path or a postgresql:// URL.")
    module, name = BACKENDS["postgresql" if is_postgres(location) else "sqlite"].split(":")
    backend: type[Store] = getattr(importlib.import_module(module), name)
    return backend


class CollectionInfo(NamedTuple):
    """One collection and how much it holds: ``(name, documents, chunks)``."""

    name: str
    documents: int
    chunks: int


def _candidate_terms(terms: Sequence[str], dfs: dict[str, int], budget: int = CANDIDATE_POSTINGS) -> list[str]:
    """The rarer query terms, up to ``budget`` postings in all (the rarest always).

    Finding candidates costs one posting per matching chunk and term; a term in half the store adds little to
    BM25 but would make the index score tens of thousands of chunks. It still counts in the final scores.
    """
    chosen: list[str] = []
    total = 0
    for term in sorted(dict.fromkeys(terms), key=lambda t: dfs[t]):
        if chosen and total + dfs[term] > budget:
            break
        chosen.append(term)
        total += dfs[term]
    return chosen


class CollectionNameError(LoragError):
    """A collection name that cannot be used (a client error, not a store fault)."""


def path_key(path: str) -> str:
    """The form under which paths are matched: NFC, so macOS's decomposed (NFD) names equal typed ones."""
    return unicodedata.normalize("NFC", path)


def validate_collection(name: str) -> str:
    """Return ``name`` (NFC) if it is a usable collection name, else raise CollectionNameError saying why."""
    name = unicodedata.normalize("NFC", name)
    hint = (f"Use 1-{MAX_COLLECTION_CHARS} characters without '/', '\\', '..' or control characters, "
            "e.g. 人事 or handbook-2026.")
    if not name.strip():
        raise CollectionNameError("the collection name is empty.", hint)
    if len(name) > MAX_COLLECTION_CHARS:
        raise CollectionNameError(f"the collection name is {len(name)} characters long; at most {MAX_COLLECTION_CHARS} "
                         "are allowed.", hint)
    bad = [c for c in name if c in "/\\" or unicodedata.category(c).startswith("C")]
    if bad or ".." in name or name != name.strip():
        what = repr(bad[0]) if bad else ("'..'" if ".." in name else "leading or trailing spaces")
        raise CollectionNameError(f"the collection name {name!r} contains {what}.", hint)
    return name


class Store:
    """A document store; ``Store(path)`` opens SQLite, ``Store("postgresql://…")`` PostgreSQL."""

    path: Path | str  # where the store lives, for messages (a Postgres URL is shown without its password)
    candidate_postings = CANDIDATE_POSTINGS  # postings lexical_search lets the index read for candidates

    def __new__(cls, location: Path | str | None = None, *args: Any, **kwargs: Any) -> Store:
        if cls is Store:
            cls = backend_for(location)
        return super().__new__(cls)

    # -- lifecycle ------------------------------------------------------------------------------
    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction: everything inside commits together or not at all."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection."""
        raise NotImplementedError

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def bulk_load(self) -> AbstractContextManager[None]:
        """A block of many writes (a migration, a benchmark fill): backends may defer index upkeep to its end."""
        return nullcontext()

    # -- metadata -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A store-wide fact (embedder, tokenizer, …), or None."""
        raise NotImplementedError

    def set_meta(self, key: str, value: str) -> None:
        """Record a store-wide fact."""
        raise NotImplementedError

    def revision(self) -> int:
        """A counter bumped by every write, so retrieval caches know when to refresh."""
        return int(self.get_meta("revision") or 0)

    # -- documents ------------------------------------------------------------------------------
    def list_documents(self, collection: str | None = None) -> list[DocumentRow]:
        """The documents (of one collection, or all), ordered by path."""
        raise NotImplementedError

    def find_document(self, path: str) -> DocumentRow | None:
        """The document stored under ``path`` (NFC and NFD spellings match), or None."""
        raise NotImplementedError

    def delete_document(self, doc_id: int) -> None:
        """Remove a document and its chunks."""
        raise NotImplementedError

    def replace_document(self, path: str, sha256: str, mtime: float, size: int, chunks: Sequence[NewChunk],
                         progress: ProgressFn | None = None, *, collection: str = DEFAULT_COLLECTION,
                         meta: dict[str, Any] | None = None, added_at: str | None = None) -> int:
        """Store ``path`` with ``chunks``, replacing any previous version, in one transaction; return its id."""
        raise NotImplementedError

    def documents_under(self, path: str | Path) -> list[DocumentRow]:
        """The documents stored at ``path`` or below it, matching names in any Unicode normal form."""
        target = Path(path_key(str(path)))
        return [d for d in self.list_documents()
                if (p := Path(path_key(d.path))) == target or p.is_relative_to(target)]

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its document and chunk counts, ordered by name."""
        raise NotImplementedError

    # -- chunks ---------------------------------------------------------------------------------
    def get_chunks(self, chunk_ids: Sequence[int]) -> list[Chunk]:
        """The chunks with these ids, in the order given (missing ids are skipped)."""
        raise NotImplementedError

    def get_chunk(self, chunk_id: int) -> Chunk:
        chunks = self.get_chunks([chunk_id])
        if not chunks:
            raise StoreError(f"chunk {chunk_id} is not in the store {self.path}.")
        return chunks[0]

    def count_chunks(self, collection: str | None = None) -> int:
        """How many chunks are stored (in one collection, or in all)."""
        raise NotImplementedError

    def document_chunks(self, doc_id: int) -> list[NewChunk]:
        """Everything stored about one document's chunks (tokens and vectors included), in order."""
        raise NotImplementedError

    def chunk_ids(self, doc_id: int) -> list[int]:
        """The ids of one document's chunks, in order."""
        raise NotImplementedError

    def iter_tokens(self) -> Iterator[tuple[int, list[str]]]:
        """(chunk id, BM25 tokens) for every chunk, in id order (for tools; search never needs it)."""
        raise NotImplementedError

    # -- search ---------------------------------------------------------------------------------
    def lexical_search(self, tokens: Sequence[str], k: int, collection: str | None = None) -> Ranking:
        """The best ``k`` chunks for the query ``tokens`` by BM25 (matching chunks only).

        The backend's own index (FTS5, tsvector) finds candidates for the rarer terms (``weighted_candidates``);
        they are then scored over every query term (``term_counts``) with Lucene's BM25
        (k1 = 1.5, b = 0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5))), the function of the in-memory
        reference, so every backend ranks alike.
        """
        terms = [t for t in tokens if t.strip() and TOKEN_SEP not in t]
        if not terms or k <= 0:
            return []
        n_rows, avgdl, dfs = self.term_stats(sorted(set(terms)))
        known = [t for t in terms if dfs.get(t, 0) > 0]  # a term no chunk has adds nothing
        if not known:
            return []
        weights = {t: math.log(1 + (n_rows - dfs[t] + 0.5) / (dfs[t] + 0.5)) for t in set(known)}
        chosen = _candidate_terms(known, dfs, self.candidate_postings)
        candidates = self.weighted_candidates({t: weights[t] for t in chosen},
                                              max(4 * k, LEXICAL_CANDIDATES), collection)
        counts_of = self.term_counts(candidates, sorted(weights))
        scored = []
        for order, cid in enumerate(candidates):
            length, counts = counts_of.get(cid, (0, {}))
            norm = LUCENE_K1 * (1 - LUCENE_B + LUCENE_B * length / avgdl)
            score = sum(weights[t] * counts[t] / (counts[t] + norm) for t in known if t in counts)
            if score > 0:
                scored.append((-score, order, cid))
        return [(cid, -neg) for neg, _, cid in sorted(scored)[:k]]

    def term_stats(self, terms: Sequence[str]) -> tuple[int, float, dict[str, int]]:
        """(chunks, mean tokens per chunk, chunks containing each term) over the whole store."""
        raise NotImplementedError

    def lexical_candidates(self, terms: Sequence[str], n: int, collection: str | None = None) -> list[int]:
        """Up to ``n`` chunk ids matching any of ``terms``, best first by the backend's own BM25."""
        raise NotImplementedError

    def chunk_tokens(self, chunk_ids: Sequence[int]) -> dict[int, list[str]]:
        """The stored tokens of these chunks."""
        raise NotImplementedError

    def weighted_candidates(self, weights: dict[str, float], n: int, collection: str | None = None) -> list[int]:
        """Up to ``n`` chunk ids holding any of the terms (keys, rarest first; values their idf), best first.

        By default the backend's own ranking (``lexical_candidates``); a backend may rank with the weights.
        """
        return self.lexical_candidates(list(weights), n, collection)

    def term_counts(self, chunk_ids: Sequence[int], terms: Sequence[str]) -> dict[int, tuple[int, dict[str, int]]]:
        """For each of these chunks, its token count and how often it holds each of ``terms`` (those it holds)."""
        out: dict[int, tuple[int, dict[str, int]]] = {}
        for cid, doc in self.chunk_tokens(chunk_ids).items():
            out[cid] = (len(doc), {t: n for t in terms if (n := doc.count(t))})
        return out

    def dense_search(self, vector: np.ndarray, k: int, collection: str | None = None) -> Ranking:
        """The best ``k`` chunks by cosine similarity to the unit ``vector``."""
        raise NotImplementedError

    def dense_search_many(self, vectors: np.ndarray, k: int, collection: str | None = None) -> list[Ranking]:
        """``dense_search`` for each row of ``vectors`` (a backend may score them all in one pass)."""
        return [self.dense_search(v, k, collection) for v in vectors]
