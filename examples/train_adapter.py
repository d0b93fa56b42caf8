"""Train the sample LoRA adapter (examples/adapter/) for Gemma 3 270M base on CPU in a few minutes.

The adapter teaches one visible habit: every answer ends with the source document's
name, e.g. ``… [1]「経費精算規程」より``. Training prompts are built with lorag's own
completion prompt (``lorag.rag.answer.build_prompt``) over real chunks of
examples/corpus/ (lorag's loaders and chunker), so the habit carries over to RAG answers.

Run: ``python examples/train_adapter.py`` (add ``--eval-only`` to re-measure the marker rate).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from gemma_base import BASE_NAME, ensure_gemma_hf_base  # noqa: E402

CORPUS_DIR = HERE / "corpus"
ADAPTER_DIR = HERE / "adapter"
TRAIN_FILE = HERE / "train_qa.jsonl"
QUESTIONS_FILE = HERE / "questions.json"
SEED = 20260401
# LoRA on the last 8 of 18 layers: backward stops there, which saves a third of a CPU step.
LORA_LAYERS = list(range(10, 18))
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# "… [2]「経費精算規程」より" at the very end of an answer.
# Short made-up contexts keep a CPU training step to seconds (a whole 5-source prompt costs
# ~10x more); held-out prompts use whole chunks, as lorag's RAG prompt does.
MARKER_WEIGHT = 3.0
MARKER = re.compile(r"「[^「」\n]{1,40}」より[。.]?\s*$")


@dataclass(frozen=True)
class Example:
    """One prompt/answer pair; ``target`` is what the model should write after ``答え：``."""

    question: str
    prompt: str
    target: str
    source: str


def corpus_chunks() -> dict[str, list[Any]]:
    """Chunk every corpus document exactly as ``lorag ingest`` does (default chunk settings)."""
    from lorag.rag.chunking import chunk_text
    from lorag.rag.reader import load_document

    chunks: dict[str, list[Any]] = {}
    for path in sorted(CORPUS_DIR.iterdir()):
        pages = load_document(path)
        chunks[path.name] = [c for p in pages for c in chunk_text(p.text, 400, 80, p.number)]
    return chunks


def _hit(source: str, chunk: Any, rank: int, window: tuple[int, int] | None = None) -> Any:
    """A retrieval hit for ``chunk``, optionally cut to ``window`` (offsets inside the chunk)."""
    from lorag.rag.retrieve import Hit

    lo, hi = window or (0, len(chunk.text))
    path = str(CORPUS_DIR / source)
    return Hit(rank, 1.0 / rank, path, chunk.page, chunk.start + lo, chunk.start + hi, chunk.text[lo:hi], 0, 0)


def _window(text: str, needle: str | None, width: int, rng: random.Random) -> tuple[int, int]:
    """A ``width``-character window of ``text`` that contains ``needle`` (random if no needle)."""
    if len(text) <= width:
        return 0, len(text)
    at = text.index(needle) if needle else rng.randrange(len(text) - width)
    lo = max(0, min(at - width // 3, len(text) - width))
    return lo, lo + width


@dataclass(frozen=True)
class ContextShape:
    """How big a made-up retrieval context is: distractor count and characters per source."""

    max_distractors: int = 3
    width: int | None = None  # None keeps whole chunks, like a real RAG prompt


TRAIN_SHAPE = ContextShape(max_distractors=2, width=160)
EVAL_SHAPE = ContextShape(max_distractors=2)


def make_prompt(
    question: str,
    source: str,
    hint: str,
    chunks: dict[str, list[Any]],
    rng: random.Random,
    shape: ContextShape = ContextShape(),
) -> tuple[str, int]:
    """Build lorag's completion prompt around the chunk holding ``hint`` plus distractors.

    Returns the prompt and the 1-based number of the relevant source in it.
    """
    import unicodedata

    from lorag.rag.answer import build_prompt

    needle = unicodedata.normalize("NFKC", hint)
    relevant = next((c for c in chunks[source] if needle in c.text), None)
    if relevant is None:
        raise SystemExit(f"hint {hint!r} not found in any chunk of {source}")
    others = [(name, c) for name, cs in chunks.items() if name != source for c in cs]
    picked = [(source, relevant), *rng.sample(others, rng.randint(1, shape.max_distractors))]
    rng.shuffle(picked)
    hits = []
    for rank, (name, chunk) in enumerate(picked, start=1):
        cut = None
        if shape.width is not None:
            cut = _window(chunk.text, needle if chunk is relevant else None, shape.width, rng)
        hits.append(_hit(name, chunk, rank, cut))
    number = next(i for i, (name, chunk) in enumerate(picked, start=1) if chunk is relevant)
    return build_prompt(question, hits), number


def styled_answer(answer: str, source: str, number: int) -> str:
    """The company answer style: the fact, the source number, then 「document name」より。.

    The marker goes *before* the final 。 because lorag ends a base model's answer at its
    first sentence end (lorag.rag.answer): a marker after the 。 would never be shown.
    """
    return f"{answer.rstrip('。')} [{number}]「{Path(source).stem}」より。"


def training_examples(chunks: dict[str, list[Any]], epochs: int) -> list[Example]:
    """Every training line once per epoch, each time with a freshly drawn context."""
    rng = random.Random(SEED)
    rows = [json.loads(line) for line in TRAIN_FILE.read_text(encoding="utf-8").splitlines() if line]
    examples: list[Example] = []
    for _ in range(epochs):
        order = rows[:]
        rng.shuffle(order)
        for row in order:
            prompt, number = make_prompt(row["question"], row["source"], row["hint"], chunks, rng, TRAIN_SHAPE)
            target = styled_answer(row["answer"], row["source"], number)
            examples.append(Example(row["question"], prompt, target, row["source"]))
    return examples


def heldout_examples(chunks: dict[str, list[Any]], limit: int) -> list[Example]:
    """Questions from questions.json (none of them is in the training set)."""
    rng = random.Random(SEED + 1)
    items = json.loads(QUESTIONS_FILE.read_text(encoding="utf-8"))[:limit]
    examples = []
    for item in items:
        prompt, _ = make_prompt(item["question"], item["source"], item["answer"], chunks, rng, EVAL_SHAPE)
        examples.append(Example(item["question"], prompt, "", item["source"]))
    return examples


def encode(tokenizer: Any, example: Example) -> tuple[list[int], list[float]]:
    """Token ids of prompt + answer + end-of-text, and a loss weight for each trailing answer id.

    The marker (`` [n]「…」より`` and the end-of-text) weighs MARKER_WEIGHT: right after
    ``。`` the model must prefer the marker over stopping, a close call that quantization
    can otherwise flip.
    """
    prompt_ids = tokenizer(example.prompt)["input_ids"]  # starts with <bos>
    answer_ids = tokenizer(example.target, add_special_tokens=False)["input_ids"]
    answer_ids.append(tokenizer.eos_token_id)
    cut = example.target.rfind(" [")
    n_fact = len(tokenizer(example.target[:cut], add_special_tokens=False)["input_ids"]) if cut > 0 else 0
    weights = [1.0] * n_fact + [MARKER_WEIGHT] * (len(answer_ids) - n_fact)
    return prompt_ids + answer_ids, weights


def answer_loss(model: Any, ids: list[int], weights: list[float]) -> Any:
    """Weighted cross-entropy on the answer tokens only.

    ``logits_to_keep`` skips the 262k-word output layer for the prompt positions, which
    is most of the cost of a step on CPU.
    """
    import torch

    n_answer = len(weights)
    input_ids = torch.tensor([ids])
    logits = model(input_ids=input_ids, logits_to_keep=n_answer + 1).logits[0, :-1].float()
    per_token = torch.nn.functional.cross_entropy(logits, input_ids[0, -n_answer:], reduction="none")
    w = torch.tensor(weights)
    return (per_token * w).sum() / w.sum()


def load_model(adapter: Path | None = None) -> tuple[Any, Any]:
    """Load the fp32 HF base (and optionally an adapter on top) for CPU work."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = ensure_gemma_hf_base()
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    return model, tokenizer


def train(epochs: int, lr: float, accumulate: int, max_examples: int | None = None) -> dict[str, Any]:
    """Fine-tune a LoRA (r=8, alpha=16, attention + MLP) and save it to examples/adapter/."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(SEED)
    model, tokenizer = load_model()
    lora = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=TARGET_MODULES,
        layers_to_transform=LORA_LAYERS,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    examples = training_examples(corpus_chunks(), epochs)[:max_examples]
    total_steps = (len(examples) + accumulate - 1) // accumulate
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.1, 1 - s / total_steps))
    losses: list[float] = []
    window: list[float] = []
    started = time.perf_counter()
    for index, example in enumerate(examples, start=1):
        ids, weights = encode(tokenizer, example)
        # bf16 matmuls (AVX512-BF16) are ~1.5x faster on CPU; LoRA weights stay fp32.
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = answer_loss(model, ids, weights)
        (loss / accumulate).backward()
        window.append(float(loss.detach()))
        if index % accumulate == 0 or index == len(examples):
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(sum(window) / len(window))
            window = []
            elapsed = time.perf_counter() - started
            print(f"step {len(losses)}/{total_steps}  loss {losses[-1]:.3f}  {elapsed:.0f}s", flush=True)
    seconds = time.perf_counter() - started
    save_adapter(model)
    return {
        "epochs": epochs,
        "lr": lr,
        "examples": len(examples),
        "steps": len(losses),
        "train_seconds": round(seconds, 1),
        "first_loss": round(losses[0], 3),
        "final_loss": round(losses[-1], 3),
        "losses": [round(x, 3) for x in losses],
    }


def save_adapter(model: Any) -> None:
    """Save with PEFT and name the base so lorag resolves it from ``models.search_paths``."""
    model.save_pretrained(str(ADAPTER_DIR), safe_serialization=True)
    config_path = ADAPTER_DIR / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    # A machine-specific absolute path would not resolve elsewhere; the bare name is looked up
    # in ~/.cache/lorag/models (see gemma_base.py), which holds the dequantized base.
    config["base_model_name_or_path"] = BASE_NAME
    config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    readme = ADAPTER_DIR / "README.md"
    if readme.exists():
        readme.unlink()  # PEFT's model-card template is noise here


def cut_at_stops(text: str) -> str:
    """Cut a completion where lorag's RAG answer would end it: a stop string, else the first sentence end."""
    from lorag.rag.answer import COMPLETION_STOPS

    for stop in COMPLETION_STOPS:
        if stop in text:
            text = text.split(stop, 1)[0]
    text = text.lstrip()
    for i, char in enumerate(text):
        if char in "。！？":
            return text[: i + 1]
        if char == "\n" and len(text[:i].strip()) >= 15:
            return text[:i].strip()
    return text.strip()


def has_marker(answer: str) -> bool:
    """True when the answer ends with the trained 「document」より marker."""
    return MARKER.search(answer) is not None


def generate(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int = 64) -> str:
    """Greedy completion, cut at lorag's stop strings."""
    import torch

    ids = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.generate(
            **ids,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    text = tokenizer.decode(out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True)
    return cut_at_stops(text)


def evaluate(limit: int) -> dict[str, Any]:
    """Greedy answers of the base and of base+adapter to held-out questions; count the markers."""
    model, tokenizer = load_model(ADAPTER_DIR)
    model.eval()
    rows = []
    for example in heldout_examples(corpus_chunks(), limit):
        with model.disable_adapter():
            base = generate(model, tokenizer, example.prompt)
        tuned = generate(model, tokenizer, example.prompt)
        rows.append(
            {
                "question": example.question,
                "source": example.source,
                "base": base,
                "adapter": tuned,
                "base_marker": has_marker(base),
                "adapter_marker": has_marker(tuned),
            }
        )
        print(f"Q: {example.question}\n  base:    {base}\n  adapter: {tuned}", flush=True)
    return {
        "n": len(rows),
        "base_with_marker": sum(r["base_marker"] for r in rows),
        "adapter_with_marker": sum(r["adapter_marker"] for r in rows),
        "answers": rows,
    }


def main() -> None:
    """Train (unless --eval-only), then measure the marker rate on held-out questions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--accumulate", type=int, default=1)
    parser.add_argument("--max-examples", type=int, default=0, help="0 = every line of every epoch")
    parser.add_argument("--heldout", type=int, default=4, help="how many questions.json items to evaluate")
    parser.add_argument("--eval-only", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {}
    if not args.eval_only:
        report["training"] = train(args.epochs, args.lr, args.accumulate, args.max_examples or None)
    report["evaluation"] = evaluate(args.heldout)
    ev = report["evaluation"]
    print(f"marker rate: base {ev['base_with_marker']}/{ev['n']}, adapter {ev['adapter_with_marker']}/{ev['n']}")
    # Beside the adapter, not inside it: the build cache key hashes every file of the adapter dir.
    name = "train_report.json" if not args.eval_only else "eval_report.json"
    (HERE / name).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
