"""Fine-tune demo: the base Gemma 3 270M, both Q4_K_M builds of the bundled LoRA and the fine-tune, side by side.

1. ingest examples/corpus;
2. build examples/adapter through lorag's real pipeline twice: adapter mode (Q4_K_M base + GGUF LoRA) and
   merged (merge → GGUF → Q4_K_M), each with its fidelity report (KL and top-1 on a probe, greedy agreement
   with the fine-tune on the held-out lines of examples/eval_qa.jsonl), then apply lorag's route rule
   (docs/ROUTE_CHOICE.md) and print each build's reason;
3. switch the demo config to the chosen build;
4. ask a few questions and print the streamed answers with citations of the base model, the merged build, the
   adapter build and the unquantized fine-tune (transformers + PEFT, fp32; skipped with a note when
   transformers or peft cannot load; its greedy answers are kept in ``reference-answers.json``, so a rerun
   that asks the same of the same store reads them instead of loading the model again);
5. a table of which answers carry the trained habit (the answer ends with 「document name」より, the base's
   never do) and, per build, how many of its answers are identical to the unquantized fine-tune's.

The rule keeps the build closest to the fine-tune: a build answer that reads better but differs from the
fine-tune's is quantization drift. A second run is fast: unchanged documents, both builds cache hits, the
fine-tune's answers read from the file.

Run: ``python examples/demo_finetune.py`` (its own config and store under ./.lorag/demo-finetune/).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from gemma_base import MODELS_DIR, ensure_gemma_hf_base  # noqa: E402
from reference_answers import CachedReference  # noqa: E402

CORPUS_DIR = HERE / "corpus"
ADAPTER_DIR = HERE / "adapter"
WORKDIR = REPO / ".lorag" / "demo-finetune"
QUESTIONS = (
    "給与は毎月何日に支払われますか？",
    "経費はいつまでに申請すればよいですか？",
    "会議室「つばき」の定員は何名ですか？",
)
REFERENCE = "fine-tune (unquantized)"
LABELS = {"base": "base Gemma 3 270M", "merge": "merged Q4_K_M", "adapter": "Q4_K_M + LoRA"}
HEADS = {"base": "base", "merge": "merge", "adapter": "adapter", REFERENCE: "fine-tune"}  # step 5's columns
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
    """Everything the demo did: ingestion, both builds, which one was chosen, and every model's answers."""

    ingested: dict[str, int]
    builds: dict[str, dict[str, Any]]  # "merge" and "adapter" → BuildResult.to_dict()
    chosen: str  # the mode the config was switched to
    base: list[DemoAnswer]
    answers: dict[str, list[DemoAnswer]]  # "merge" and "adapter" → that build's answers
    reference: list[DemoAnswer] | None = None  # the unquantized fine-tune's; None when transformers/peft cannot load
    reference_cached: int = 0  # how many of them were read from reference-answers.json instead of generated

    @property
    def build(self) -> dict[str, Any]:
        return self.builds[self.chosen]

    @property
    def merged(self) -> list[DemoAnswer]:
        return self.answers["merge"]

    @property
    def tuned(self) -> list[DemoAnswer]:
        """The chosen build's answers."""
        return self.answers[self.chosen]

    def answers_of(self, row: str) -> list[DemoAnswer]:
        """The answer list of a row of step 4: "base", a build mode, or the unquantized fine-tune."""
        if row == "base":
            return self.base
        if row == REFERENCE:
            assert self.reference is not None
            return self.reference
        return self.answers[row]

    def identical(self, mode: str) -> int:
        """How many of the build's answers are exactly the unquantized fine-tune's (0 without a reference)."""
        pairs = zip(self.answers[mode], self.reference or [], strict=False)
        return sum(a.answer.strip() == r.answer.strip() for a, r in pairs)


def demo_config(workdir: Path) -> Any:
    """A config of the demo's own (store and builds under ``workdir``), bundled Gemma as the LLM."""
    from lorag.config import init_config, load_config, update_config

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "lorag.yaml"
    if not path.exists():
        init_config(path)
    # Start every run from the base model, so the comparison is base vs fine-tune each time.
    update_config(path, {"llm.backend": "llamacpp", "llm.model": "", "llm.adapter": "", "llm.temperature": 0.0,
                         "llm.max_tokens": 96, "models.search_paths": [str(MODELS_DIR)],
                         "models.output_dir": str(workdir / "models")})
    return load_config(path)


def ingest_corpus(config: Any, console: Any) -> dict[str, int]:
    """Ingest the sample corpus with a progress bar; unchanged files are skipped."""
    from rich.progress import BarColumn, Progress, TextColumn

    from lorag.rag.ingest import ingest_paths

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  console=console, transient=True) as bars:
        task = bars.add_task("ingest", total=None)

        def progress(event: dict[str, Any]) -> None:
            name = Path(event["path"]).name if event.get("path") else ""
            bars.update(task, description=f"ingest {event['stage']:5} {name}", completed=event["done"],
                        total=event["total"] or None)

        report = ingest_paths(config, [CORPUS_DIR], progress=progress)
    counts = {"added": len(report.added), "updated": len(report.updated), "unchanged": len(report.unchanged),
              "failed": len(report.failed)}
    console.print(f"ingested {CORPUS_DIR.name}/: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for path, reason in report.failed:
        console.print(f"  [red]failed[/red] {path}: {reason}")
    return counts


def build_adapter(config: Any, console: Any, mode: str, switch: bool) -> dict[str, Any]:
    """Build examples/adapter at Q4_K_M in ``mode`` ("merge" or "adapter"), print fidelity; optionally switch."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from lorag.build.pipeline import BuildRequest, run_build

    request = BuildRequest(lora_path=ADAPTER_DIR, base=ensure_gemma_hf_base(), quantization="Q4_K_M",
                           name="sakura-gemma", mode=mode, update_config=switch)  # type: ignore[arg-type]
    tasks: dict[str, TaskID] = {}
    with Progress(TextColumn("{task.description:<10}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                  TimeElapsedColumn(), TextColumn("{task.fields[message]}"), console=console) as bars:

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
    from lorag.build.choice import candidate_of_result, choose_route

    choice = choose_route([candidate_of_result(m, b) for m, b in builds.items()],
                          config.settings.build.agreement_tolerance)
    for mode, reason in choice.reasons.items():
        console.print(f"  {mode}: {reason}")
    return choice.chosen.name


def switch_to(config: Any, build: dict[str, Any]) -> None:
    """Point the demo config at a build (what ``update_config=True`` does inside the pipeline)."""
    from lorag.config import update_config

    update_config(config.path, {"llm.backend": "llamacpp", "llm.model": build["gguf"],
                                "llm.adapter": build.get("adapter_gguf") or ""})


def config_with(config: Any, backend: Literal["llamacpp", "transformers"], model: str, adapter: str) -> Any:
    """An in-memory copy of ``config`` with other llm settings (the file is not touched)."""
    from lorag.config import load_config

    copy = load_config(config.path)
    copy.settings.llm.backend, copy.settings.llm.model, copy.settings.llm.adapter = backend, model, adapter
    return copy


def config_for(config: Any, build: dict[str, Any]) -> Any:
    """An in-memory copy of ``config`` that uses ``build``."""
    return config_with(config, "llamacpp", build["gguf"], build.get("adapter_gguf") or "")


def load_reference(config: Any, console: Any) -> tuple[Any, CachedReference] | None:
    """The unquantized fine-tune (HF base + PEFT adapter, transformers, fp32) and its config; None if it cannot load.

    fp32, as in each build's fidelity check (lorag.build.fidelity): the reference its KL is measured against.
    Its greedy answers are remembered in the workdir's reference-answers.json; the model is loaded here when the
    file holds none of its answers yet, else only for a question the file cannot answer.
    """
    from lorag.errors import LoragError

    base = ensure_gemma_hf_base()
    workdir = config.path.parent
    ref_config = config_with(config, "transformers", str(base), str(ADAPTER_DIR))
    try:
        reference = CachedReference(base, ADAPTER_DIR, workdir / "reference-answers.json", dtype="float32",
                                    hash_cache=Path(config.settings.models.output_dir))
        if not reference.known():
            with console.status("loading the unquantized fine-tune (transformers + PEFT, fp32)"):
                reference.load()
        return ref_config, reference
    except (ImportError, LoragError) as exc:
        console.print(f"[yellow]note[/yellow] the unquantized fine-tune is not shown: transformers + PEFT could not "
                      f"load it ({exc})")
        return None


def ask(config: Any, generator: Any, question: str, label: str, out: TextIO) -> DemoAnswer:
    """Stream one answer of ``generator`` to ``out`` and return it with its citations."""
    from lorag.rag.answer import answer_stream

    out.write(f"  {label}: ")
    done: dict[str, Any] = {}
    for event in answer_stream(config, question, generator=generator):
        if event["type"] == "token":
            out.write(event["text"])
            out.flush()
        elif event["type"] == "done":
            done = event
    cited = [c for c in done.get("citations", []) if c.get("cited")]
    sources = ", ".join(f"[{c['n']}] {Path(c['source']).name}" for c in cited) or "(no [n] citation)"
    out.write(f"\n      sources cited: {sources}\n")
    return DemoAnswer(question, label.strip(), done.get("answer", ""), done.get("citations", []))


def run_finetune_demo(
    workdir: Path = WORKDIR, questions: tuple[str, ...] = QUESTIONS, out: TextIO = sys.stdout
) -> DemoResult:
    """Ingest, build the sample adapter two ways, switch to the faithful build, compare answers."""
    from rich.console import Console

    from lorag.config import load_config

    console = Console(file=out, highlight=False, soft_wrap=True)  # long paths and reasons stay one line
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
    llm = load_config(config.path).settings.llm
    console.print(
        f"chosen: {chosen} (route rule: greedy agreement, then KL)\n"
        f"llm.backend={llm.backend}\nllm.model={llm.model}\n"
        f"llm.adapter={llm.adapter or '(none)'}"
    )
    console.rule("4. questions: base / both builds / the unquantized fine-tune")
    rows = {"base": base_config, **{mode: config_for(config, builds[mode]) for mode in builds}}
    result = DemoResult(ingested, builds, chosen, [], {mode: [] for mode in builds})
    ask_all(result, rows, questions, console, out)
    print_habits(result, console)
    return result


def ask_all(result: DemoResult, rows: dict[str, Any], questions: tuple[str, ...], console: Any,
            out: TextIO) -> None:
    """Load each model once, then ask every question of each, printed question by question."""
    from lorag.generate.generator import load_generator

    models: dict[str, tuple[Any, Any]] = {}
    try:
        for row, cfg in rows.items():
            models[row] = (cfg, load_generator(cfg))
        reference = load_reference(rows["base"], console)
        if reference is not None:
            models[REFERENCE], result.reference = reference, []
        labels = {row: _label(row, result.chosen) for row in models}
        width = max(len(label) for label in labels.values())
        for question in questions:
            out.write(f"\n質問：{question}\n")
            for row, (cfg, generator) in models.items():
                answer = ask(cfg, generator, question, labels[row].ljust(width), out)
                result.answers_of(row).append(answer)
        if reference is not None:
            result.reference_cached = reference[1].hits
    finally:
        for _, generator in models.values():
            generator.close()


def print_habits(result: DemoResult, console: Any) -> None:
    """Step 5: which answers carry the trained 「document」より, and which builds answer like the fine-tune."""
    console.rule("5. the fine-tune's habit: answers end with 「document」より")
    columns = {"base": result.base, **result.answers}
    if result.reference is not None:
        columns[REFERENCE] = result.reference
    heads = [HEADS[row] + (" (chosen)" if row == result.chosen else "") for row in columns]
    console.print(" " * 4 + "  ".join(heads))
    for i in range(len(result.base)):
        marks = [_yes(answers[i]).ljust(len(head)) for answers, head in zip(columns.values(), heads, strict=True)]
        console.print(f"Q{i + 1:<3}" + "  ".join(marks).rstrip())
    if result.reference is None:
        return
    width = max(len(_label(mode, result.chosen)) for mode in result.answers)
    for mode in result.answers:
        console.print(f"{_label(mode, result.chosen):<{width}}: answers identical to the unquantized fine-tune: "
                      f"{result.identical(mode)}/{len(result.reference)}")
    if any(result.identical(mode) < len(result.reference) for mode in result.answers):
        console.print("Answers unlike the fine-tune's are quantization drift, even if they read better.")
    if result.reference_cached:
        console.print(f"({result.reference_cached} of the fine-tune's {len(result.reference)} answers were read from "
                      "reference-answers.json: the same weights asked the same prompts, greedy)")


def _label(row: str, chosen: str) -> str:
    name = LABELS.get(row, row)  # the reference row is labelled by its own name
    return f"{name} (chosen)" if row == chosen else name


def _yes(answer: DemoAnswer) -> str:
    return "yes" if answer.has_marker else "no"


if __name__ == "__main__":
    run_finetune_demo()
