"""The behaviour part of the verify stage: one reference per build (or per set of candidates), each GGUF scored.

Which reference: the fine-tune's F16 GGUF in llama.cpp when the build produced one (the adapter route's cached
F16 base + F16 GGUF LoRA, the reference route's F16 conversion, an F16 single pass itself), else the fine-tune in
transformers (fp32, base + unmerged PEFT adapter). Both were checked against transformers by the KL stage first
(an F16 GGUF above ``F16_KL_LIMIT`` fails the build), and llama.cpp decodes a 270M model about ten times faster
on CPU. With ``--mode auto`` the adapter candidate is built first, so its F16 pair is the reference for both.

Usage::

    shared = SharedReference()
    data = score_candidate(plan, gguf, lora, progress, f16=(base_f16, lora_f16))   # -> Behaviour.to_dict()
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorag.build import behaviour as bh
from lorag.build.eval_prompts import find_eval_prompts
from lorag.build.progress import StageProgress
from lorag.build.request import BuildPlan

log = logging.getLogger(__name__)


@dataclass
class SharedReference:
    """What every candidate of one build request shares: the transformers model and the reference outputs."""

    hf: bh.FineTuneReference | None = None
    expected: bh.Expected | None = None
    f16: tuple[Path, Path | None] | None = None  # the fine-tune's F16 GGUF (+ LoRA) once one exists
    notes: list[str] = field(default_factory=list)


def shared_of(plan: BuildPlan) -> SharedReference:
    """The plan's shared reference, created on first use."""
    if plan.shared is None:
        plan.shared = SharedReference()
    shared: SharedReference = plan.shared
    return shared


def tokenizer_dir(plan: BuildPlan) -> Path:
    """Where the fine-tune's tokenizer lives (the adapter's own when it ships one)."""
    return plan.adapter_dir if (plan.adapter_dir / "tokenizer_config.json").is_file() else plan.base_dir


def hf_reference(plan: BuildPlan) -> bh.FineTuneReference:
    """The transformers fine-tune (base + PEFT adapter, fp32), loaded at most once per build request."""
    shared = shared_of(plan)
    if shared.hf is None:
        shared.hf = bh.FineTuneReference(plan.base_dir, plan.adapter_dir, tokenizer_dir(plan))
    return shared.hf


def expected_for(plan: BuildPlan, f16: tuple[Path, Path | None] | None, progress: StageProgress) -> bh.Expected:
    """The reference's greedy outputs on the held-out prompts (computed once per build request)."""
    shared = shared_of(plan)
    if shared.expected is not None:
        return shared.expected
    prompts = find_eval_prompts(plan.adapter_dir, plan.eval_prompts, plan.roots)
    f16 = f16 or shared.f16 or earlier_f16_reference(plan)
    if f16 is not None and f16[0].is_file() and (f16[1] is None or f16[1].is_file()):
        progress.update(70, message=f"held-out prompts: reference answers ({f16[0].name}, llama.cpp)")
        shared.expected = bh.gguf_reference_outputs(tokenizer_dir(plan), prompts, f16[0], f16[1])
    else:
        progress.update(70, message="held-out prompts: reference answers (transformers, fp32)")
        shared.expected = bh.reference_outputs(hf_reference(plan), prompts)
    return shared.expected


def score_candidate(plan: BuildPlan, gguf: Path, lora: Path | None, progress: StageProgress,
                    f16: tuple[Path, Path | None] | None = None) -> dict[str, Any]:
    """Behaviour score of one GGUF (+ LoRA) against the unquantized fine-tune; {"skipped": why} when it cannot run."""
    try:
        started = time.monotonic()
        fresh = shared_of(plan).expected is None
        expected = expected_for(plan, f16, progress)
        reference_s = time.monotonic() - started if fresh else 0.0
        if f16 is not None and (gguf, lora) == f16:  # the candidate is the reference (an F16 build)
            data = bh.score_outputs(expected, expected.outputs, [a for _, a in expected.texts]).to_dict()
        else:
            progress.update(85, message=f"held-out prompts: {gguf.name} answers (llama.cpp)")
            data = bh.score_gguf(expected, gguf, lora).to_dict()
        # What the score cost this build: the reference's answers (once per request) and this candidate's.
        data["seconds"] = {"reference": round(reference_s, 2),
                           "candidate": round(time.monotonic() - started - reference_s, 2)}
        return data
    except (ValueError, RuntimeError, OSError, ImportError) as exc:
        note = f"behaviour score skipped: {type(exc).__name__}: {exc}"
        log.warning(note)
        plan.notes.append(note)
        return {"skipped": note}


def reference_pair(plan: BuildPlan, record: dict[str, Any]) -> tuple[Path, Path | None] | None:
    """The F16 GGUF (+ LoRA) a build record says it left behind, when it still exists."""
    ref = (record.get("fidelity") or {}).get("reference_gguf") or {}
    if not ref.get("model"):
        return None
    model = Path(ref["model"])
    lora = plan.final_dir / ref["lora"] if ref.get("lora") else None
    if not model.is_file() or (lora is not None and not lora.is_file()):
        return None
    return model, lora


def behaviour_is_current(plan: BuildPlan, record: dict[str, Any]) -> bool:
    """Whether a cached build's behaviour score exists and was measured on the prompts this build would use."""
    pair = reference_pair(plan, record)
    if pair is not None and shared_of(plan).f16 is None:
        shared_of(plan).f16 = pair  # a cached adapter build's F16 pair is the reference for the next candidate
    old = (record.get("fidelity") or {}).get("behaviour") or {}
    current = bh.prompts_key(find_eval_prompts(plan.adapter_dir, plan.eval_prompts, plan.roots))
    return "agreement" in old and old.get("prompts_key") == current


def rescore(plan: BuildPlan, record: dict[str, Any], progress: StageProgress) -> bool:
    """Score a cached build again (its score is missing or stale); True when the record got a score."""
    fidelity = record.setdefault("fidelity", {})
    gguf = plan.final_dir / record["gguf"]
    lora = plan.final_dir / record["adapter_gguf"] if record.get("adapter_gguf") else None
    pair = reference_pair(plan, record)
    if pair is None and plan.qtype == "F16" and lora is None:
        pair = (gguf, None)
    fidelity["behaviour"] = score_candidate(plan, gguf, lora, progress, pair)
    return "agreement" in fidelity["behaviour"]


def earlier_f16_reference(plan: BuildPlan) -> tuple[Path, Path | None] | None:
    """The F16 base + GGUF LoRA an earlier adapter-mode build of this same adapter and base left behind."""
    import json

    from lorag.build.cache import build_key, hash_tree
    from lorag.build.convert import converter_version

    adapter_hash = hash_tree(plan.adapter_dir, plan.output_dir)
    for path in sorted(plan.output_dir.glob("*/build.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if record.get("mode") != "adapter" or not isinstance(record.get("quantization"), str):
            continue
        # The key proves the same base weights, adapter and converter (paths alone could hold other files now).
        parts = {"base": plan.base_hash, "adapter": adapter_hash, "quantization": record["quantization"],
                 "converter": converter_version(), "mode": "adapter"}
        if record.get("key") != build_key(parts):
            continue
        lora = (record.get("fidelity") or {}).get("reference_gguf", {}).get("lora")
        model = (record.get("fidelity") or {}).get("reference_gguf", {}).get("model")
        if model and lora and Path(model).is_file() and (path.parent / lora).is_file():
            return Path(model), path.parent / lora
    return None
