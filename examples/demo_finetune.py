"""Fine-tune demo: the same questions answered by the base Gemma 3 270M and by the built LoRA fine-tune.

Steps: ingest examples/corpus → build examples/adapter through lorag's real pipeline twice:
adapter mode (Q4_K_M base + GGUF LoRA) and merged (merge → GGUF → Q4_K_M), each with its
fidelity report (KL and top-1 on a probe, greedy agreement with the fine-tune on the held-out
lines of examples/eval_qa.jsonl) → switch the demo config to the build lorag's route rule picks
(docs/ROUTE_CHOICE.md) → ask a few questions and print the streamed answers with citations of the base
model, the merged Q4_K_M build and the chosen build. The fine-tune ends every answer with
「document name」より, the base does not. Quantizing the *merged* weights to Q4_K_M can erase a
small fine-tune delta; the fidelity numbers show it and the demo shows its effect. A second
run is fast: the documents are unchanged and both builds are cache hits.

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
    """Everything the demo did: ingestion, both builds, which one was chosen, and the answers."""

    ingested: dict[str, int]
    builds: dict[str, dict[str, Any]]  # "merge" and "adapter" → BuildResult.to_dict()
    chosen: str  # the mode the config was switched to
    base: list[DemoAnswer]
    merged: list[DemoAnswer]
    tuned: list[DemoAnswer]  # answers of the chosen build

    @property
    def build(self) -> dict[str, Any]:
        return self.builds[self.chosen]


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


def build_adapter(config: Any, console: Any, mode: str, switch: bool) -> dict[str, Any]:
    """Build examples/adapter at Q4_K_M in ``mode`` ("merge" or "adapter"), print fidelity; optionally switch."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from lorag.build.pipeline import BuildRequest, run_build

    request = BuildRequest(
        lora_path=ADAPTER_DIR,
        base=ensure_gemma_hf_base(),
        quantization="Q4_K_M",
        name="sakura-gemma",
        mode=mode,
        update_config=switch,
    )  # type: ignore[arg-type]
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
    print_build(result, mode, console)
    return result


def print_build(result: dict[str, Any], mode: str, console: Any) -> None:
    """One line per artifact, then the fidelity report (KL and top-1 vs the unquantized fine-tune)."""
    state = "cache hit" if result["cache_hit"] else "built"
    console.print(
        f"[bold]{mode}[/bold] {state}: {result['gguf']} ({result['size_bytes'] / 2**20:.0f} MiB, "
        f"{result['quantization']})"
    )
    if result.get("adapter_gguf"):
        console.print(f"  + LoRA applied at run time: {result['adapter_gguf']}")
    fid = result.get("fidelity") or {}
    if "kl_mean" in fid:
        f16 = f", F16 GGUF KL {fid['f16_kl_mean']:.1e}" if fid.get("f16_kl_mean") is not None else ""
        console.print(
            f"  fidelity vs the unquantized fine-tune: KL {fid['kl_mean']:.4f}, "
            f"same top-1 token {100 * fid.get('top1', 0):.0f} %{f16}"
        )
    behaviour = result.get("behaviour") or {}
    if "agreement" in behaviour:
        console.print(
            f"  held-out prompts: greedy agreement {behaviour['agreement']:.2f}, "
            f"{behaviour['exact']}/{behaviour['prompts']} answers identical to the fine-tune"
        )
    for warning in result.get("warnings", []):
        console.print(f"  [yellow]note[/yellow] {warning}")


def choose_build(builds: dict[str, dict[str, Any]], config: Any, console: Any) -> str:
    """Apply lorag's route rule (what ``--mode auto`` does) to the two builds; print why."""
    from lorag.build.choice import candidate_of, choose_route

    choice = choose_route([candidate_of(m, b.get("fidelity") or {}) for m, b in builds.items()],
                          config.settings.build.agreement_tolerance)
    for mode, reason in choice.reasons.items():
        console.print(f"  {mode}: {reason}")
    return choice.chosen.name


def switch_to(config: Any, build: dict[str, Any]) -> None:
    """Point the demo config at a build (what ``update_config=True`` does inside the pipeline)."""
    from lorag.config import update_config

    update_config(
        config.path,
        {"llm.backend": "llamacpp", "llm.model": build["gguf"], "llm.adapter": build.get("adapter_gguf") or ""},
    )


def config_for(config: Any, build: dict[str, Any]) -> Any:
    """An in-memory copy of ``config`` that uses ``build`` (the file is not touched)."""
    from lorag.config import load_config

    copy = load_config(config.path)
    copy.settings.llm.backend = "llamacpp"
    copy.settings.llm.model = build["gguf"]
    copy.settings.llm.adapter = build.get("adapter_gguf") or ""
    return copy


def ask(config: Any, question: str, label: str, out: TextIO) -> DemoAnswer:
    """Stream one answer to ``out`` and return it with its citations."""
    from lorag.demo import stream_answer

    out.write(f"  {label}: ")
    done = stream_answer(config, question, out)
    cited = [c for c in done.get("citations", []) if c.get("cited")]
    sources = ", ".join(f"[{c['n']}] {Path(c['source']).name}" for c in cited) or "(no [n] citation)"
    out.write(f"\n      sources cited: {sources}\n")
    return DemoAnswer(question, label, done.get("answer", ""), done.get("citations", []))


def run_finetune_demo(
    workdir: Path = WORKDIR, questions: tuple[str, ...] = QUESTIONS, out: TextIO = sys.stdout
) -> DemoResult:
    """Ingest, build the sample adapter two ways, switch to the faithful build, compare answers."""
    from rich.console import Console

    from lorag.config import load_config

    console = Console(file=out, highlight=False)
    console.rule("1. ingest the sample corpus")
    config = demo_config(workdir)
    ingested = ingest_corpus(config, console)
    base_config = load_config(config.path)  # a snapshot taken before the config is switched
    console.rule("2. build examples/adapter: Q4_K_M base + LoRA, and merged Q4_K_M")
    # Adapter first: its F16 base + F16 LoRA then serve as the unquantized reference for both behaviour scores.
    built = {mode: build_adapter(config, console, mode, switch=False) for mode in ("adapter", "merge")}
    builds = {mode: built[mode] for mode in ("merge", "adapter")}
    chosen = choose_build(builds, config, console)
    console.rule("3. switch the config to the build closest to the fine-tune")
    switch_to(config, builds[chosen])
    tuned_config = load_config(config.path)
    llm = tuned_config.settings.llm
    console.print(
        f"chosen: {chosen} (route rule: greedy agreement, then KL)\n"
        f"llm.backend={llm.backend}\nllm.model={llm.model}\n"
        f"llm.adapter={llm.adapter or '(none)'}"
    )
    console.rule("4. questions: base Gemma 3 270M / merged Q4_K_M / chosen build")
    merged_config = config_for(config, builds["merge"])
    base, merged, tuned = [], [], []
    for question in questions:
        out.write(f"\n質問：{question}\n")
        base.append(ask(base_config, question, "base           ", out))
        merged.append(ask(merged_config, question, "merged Q4_K_M  ", out))
        if chosen != "merge":
            tuned.append(ask(tuned_config, question, f"{chosen} (chosen)", out))
        else:
            tuned.append(merged[-1])
    console.rule("5. the fine-tune's habit: answers end with 「document」より")
    console.print(f"{'':<6}base  merged  {chosen}")
    for i, (b, m, t) in enumerate(zip(base, merged, tuned, strict=True), start=1):
        console.print(f"Q{i:<5}{_yes(b)}   {_yes(m)}     {_yes(t)}")
    return DemoResult(ingested, builds, chosen, base, merged, tuned)


def _yes(answer: DemoAnswer) -> str:
    return "yes" if answer.has_marker else "no "


if __name__ == "__main__":
    run_finetune_demo()
