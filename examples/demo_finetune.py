"""Fine-tune demo: the same questions answered by the base Gemma 3 270M and by the built LoRA fine-tune.

Steps: ingest examples/corpus → build examples/adapter through lorag's real pipeline (merge,
GGUF, Q4_K_M, fidelity check) → switch the demo config to the built model → ask a few
questions and print both models' streamed answers with their citations. The fine-tune ends
every answer with 「document name」より, the base does not. A second run is fast: the
documents are unchanged and the build is a cache hit.

Run: ``python examples/demo_finetune.py`` (its own config and store under ./.lorag/demo-finetune/).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from gemma_base import MODELS_DIR, ensure_gemma_hf_base  # noqa: E402

CORPUS_DIR = HERE / "corpus"
ADAPTER_DIR = HERE / "adapter"
WORKDIR = REPO / ".lorag" / "demo-finetune"
QUESTIONS = (
    "給与は毎月何日に支払われますか？",
    "経費はいつまでに申請すればよいですか？",
    "会議室「つばき」の定員は何名ですか？",
)
# The trained habit: the answer ends with 「document name」より.
MARKER = re.compile(r"「[^「」\n]{1,40}」より[。.]?\s*$")


@dataclass
class DemoAnswer:
    """One model's answer to one question, with the sources it cited."""

    question: str
    model: str
    answer: str
    citations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def has_marker(self) -> bool:
        return MARKER.search(self.answer) is not None


@dataclass
class DemoResult:
    """Everything the demo did: ingestion, the build result and both models' answers."""

    ingested: dict[str, int]
    build: dict[str, Any]
    base: list[DemoAnswer]
    tuned: list[DemoAnswer]


def demo_config(workdir: Path) -> Any:
    """A config of the demo's own (store and builds under ``workdir``), bundled Gemma as the LLM."""
    from lorag.config import init_config, load_config, update_config

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "lorag.yaml"
    if not path.exists():
        init_config(path)
    # Start every run from the base model, so the comparison is base vs fine-tune each time.
    update_config(
        path,
        {
            "llm.backend": "llamacpp",
            "llm.model": "",
            "llm.adapter": "",
            "llm.temperature": 0.0,
            "llm.max_tokens": 96,
            "models.search_paths": [str(MODELS_DIR)],
            "models.output_dir": str(workdir / "models"),
        },
    )
    return load_config(path)


def ingest_corpus(config: Any, console: Any) -> dict[str, int]:
    """Ingest the sample corpus with a progress bar; unchanged files are skipped."""
    from rich.progress import BarColumn, Progress, TextColumn

    from lorag.rag.ingest import ingest_paths

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=console,
        transient=True,
    ) as bars:
        task = bars.add_task("ingest", total=None)

        def progress(event: dict[str, Any]) -> None:
            name = Path(event["path"]).name if event.get("path") else ""
            bars.update(
                task,
                description=f"ingest {event['stage']:5} {name}",
                completed=event["done"],
                total=event["total"] or None,
            )

        report = ingest_paths(config, [CORPUS_DIR], progress=progress)
    counts = {
        "added": len(report.added),
        "updated": len(report.updated),
        "unchanged": len(report.unchanged),
        "failed": len(report.failed),
    }
    console.print(f"ingested {CORPUS_DIR.name}/: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for path, reason in report.failed:
        console.print(f"  [red]failed[/red] {path}: {reason}")
    return counts


def build_adapter(config: Any, console: Any) -> dict[str, Any]:
    """Merge, convert and quantize the sample adapter (Q4_K_M), switch the config, print fidelity."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from lorag.models.build import BuildRequest, run_build

    request = BuildRequest(
        lora_path=ADAPTER_DIR,
        base=ensure_gemma_hf_base(),
        quantization="Q4_K_M",
        name="sakura-gemma",
        update_config=True,
    )
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[message]}"),
        console=console,
    ) as bars:

        def progress(event: dict[str, Any]) -> None:
            stage = event["stage"]
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=100, message="")
            bars.update(tasks[stage], completed=event["percent"], message=str(event.get("message", ""))[:60])

        result = run_build(config, request, progress=progress).to_dict()
    fidelity = result.get("fidelity") or {}
    state = "cache hit" if result["cache_hit"] else "built"
    console.print(f"{state}: {result['gguf']} ({result['size_bytes'] / 2**20:.0f} MiB, {result['quantization']})")
    console.print(
        "fidelity vs the merged fp model: "
        + ", ".join(f"{k} {v}" for k, v in fidelity.items() if k in ("kl_mean", "top1", "f16_kl_mean"))
    )
    for warning in result.get("warnings", []):
        console.print(f"  [yellow]note[/yellow] {warning}")
    return result


def ask(config: Any, question: str, label: str, out: TextIO) -> DemoAnswer:
    """Stream one answer to ``out`` and return it with its citations."""
    from lorag.rag.answer import answer_stream

    out.write(f"  {label}: ")
    done: dict[str, Any] = {}
    for event in answer_stream(config, question):
        if event["type"] == "token":
            out.write(event["text"])
            out.flush()
        elif event["type"] == "done":
            done = event
    cited = [c for c in done.get("citations", []) if c.get("cited")]
    sources = ", ".join(f"[{c['n']}] {Path(c['source']).name}" for c in cited) or "(no [n] citation)"
    out.write(f"\n      sources cited: {sources}\n")
    return DemoAnswer(question, label, done.get("answer", ""), done.get("citations", []))


def run_finetune_demo(
    workdir: Path = WORKDIR, questions: tuple[str, ...] = QUESTIONS, out: TextIO = sys.stdout
) -> DemoResult:
    """Ingest, build the sample adapter, switch to it, and compare base vs fine-tuned answers."""
    from rich.console import Console

    from lorag.config import load_config

    console = Console(file=out, highlight=False)
    console.rule("1. ingest the sample corpus")
    config = demo_config(workdir)
    ingested = ingest_corpus(config, console)
    base_config = load_config(config.path)  # a snapshot taken before the build switches the config
    console.rule("2. build examples/adapter (merge → GGUF → Q4_K_M → fidelity)")
    build = build_adapter(config, console)
    console.rule("3. config switched to the fine-tuned model")
    tuned_config = load_config(config.path)
    console.print(f"llm.backend={tuned_config.settings.llm.backend}  llm.model={tuned_config.settings.llm.model}")
    console.rule("4. questions: base Gemma 3 270M vs fine-tune")
    base, tuned = [], []
    for question in questions:
        out.write(f"\n質問：{question}\n")
        base.append(ask(base_config, question, "base      ", out))
        tuned.append(ask(tuned_config, question, "fine-tuned", out))
    console.rule("5. the fine-tune's habit: answers end with 「document」より")
    for b, t in zip(base, tuned, strict=True):
        console.print(
            f"{b.question}  base: {'yes' if b.has_marker else 'no '}  fine-tuned: {'yes' if t.has_marker else 'no '}"
        )
    return DemoResult(ingested, build, base, tuned)


if __name__ == "__main__":
    run_finetune_demo()
