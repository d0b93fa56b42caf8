"""Fidelity stage: KL and top-1 against the unquantized fine-tune in transformers (a broken F16 fails the build),
then the behaviour score on held-out prompts (lorag.build.behaviour_stage)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lorag.build import fidelity as fid
from lorag.build.behaviour import FineTuneReference
from lorag.build.behaviour_stage import hf_reference, score_candidate, shared_of
from lorag.build.progress import StageProgress
from lorag.build.request import BuildPlan
from lorag.errors import BuildError

log = logging.getLogger(__name__)


def verify_single_pass(plan: BuildPlan, out: Path, progress: StageProgress) -> dict[str, Any]:
    """Fidelity of a single-pass GGUF against base + adapter in transformers (there is no merged copy)."""
    ref = _reference(plan, progress, hf_reference(plan))
    if isinstance(ref, dict):
        return ref
    ids, reference = ref
    progress.update(40, message=f"{out.name} logits (llama.cpp)")
    result = _measure(reference, ids, out, None)
    assert result.kl_mean is not None
    if plan.qtype == "F16" and result.kl_mean > fid.F16_KL_LIMIT:
        raise BuildError(f"the F16 GGUF disagrees with the fine-tune (KL {result.kl_mean:.2e} > "
                         f"{fid.F16_KL_LIMIT:g}): the conversion is broken, not just lossy.",
                         "Set build.route: reference to use llama.cpp's converter, and report this.")
    data = result.to_dict()
    if plan.qtype == "F16":
        data["f16_kl_mean"] = result.kl_mean
    data["behaviour"] = score_candidate(plan, out, None, progress, (out, None) if plan.qtype == "F16" else None)
    progress.update(100, message=f"KL {result.kl_mean:.4f}, top-1 {result.top1:.0%}")
    return data


def _reference(plan: BuildPlan, progress: StageProgress,
               model: FineTuneReference) -> tuple[list[int], Any] | dict[str, Any]:
    """Probe ids and fp32 reference logits of the fine-tune, or the "skipped" fidelity record saying why."""
    if not fid.fits_in_memory(plan.base_bytes):
        note = "fidelity check skipped: an fp32 reference of this model does not fit in RAM"
        plan.notes.append(note)
        progress.update(100, message=note)
        return {"kl_mean": None, "top1": None, "notes": [note]}
    progress.update(5, message="reference logits (transformers, fp32)")
    try:
        ids = fid.probe_ids(model.tokenizer_dir)
        return ids, model.logits(ids)
    except Exception as exc:  # transformers may not know this architecture; the GGUF can still be fine
        note = f"fidelity check skipped: transformers could not run the fine-tune ({type(exc).__name__}: {exc})"
        log.warning(note)
        plan.notes.append(note)
        return {"kl_mean": None, "top1": None, "notes": [note]}


def verify_stage(plan: BuildPlan, ref_dir: Path, f16: Path, out: Path, progress: StageProgress,
                 adapter_dir: Path | None = None, lora: Path | None = None) -> dict[str, Any]:
    """Compare the GGUF(s) with the unquantized fine-tune in transformers; fail on a broken F16 conversion."""
    # The adapter route's reference is base + PEFT (shared with other candidates); the reference route's, the merge.
    model = hf_reference(plan) if adapter_dir is not None else FineTuneReference(ref_dir, None, ref_dir)
    ref = _reference(plan, progress, model)
    if isinstance(ref, dict):
        return ref
    ids, reference = ref
    progress.update(40, message="F16 GGUF logits (llama.cpp)")
    f16_fid = _measure(reference, ids, f16, lora)
    assert f16_fid.kl_mean is not None
    if f16_fid.kl_mean > fid.F16_KL_LIMIT:
        raise BuildError(f"the F16 GGUF disagrees with the merged model (KL {f16_fid.kl_mean:.2e} > "
                         f"{fid.F16_KL_LIMIT:g}): the conversion is broken, not just lossy.",
                         "Report this with the base model's config.json; do not use this GGUF.")
    result = f16_fid if out == f16 else _measure(reference, ids, out, lora)
    data = result.to_dict()
    data["f16_kl_mean"] = f16_fid.kl_mean
    pair = (f16, lora)
    if lora is not None:  # the cached F16 base + GGUF LoRA outlive the build: later candidates reuse them
        shared_of(plan).f16 = pair
        data["reference_gguf"] = {"model": str(f16), "lora": lora.name}
    data["behaviour"] = score_candidate(plan, out, lora, progress, pair)
    if model is not shared_of(plan).hf:
        model.release()
    progress.update(100, message=f"KL {result.kl_mean:.4f}, top-1 {result.top1:.0%}")
    return data


def _measure(reference: Any, ids: list[int], gguf: Path, lora: Path | None) -> Any:
    try:
        return fid.measure(reference, ids, gguf, lora)
    except (ValueError, RuntimeError, OSError) as exc:  # llama-cpp-python's load failures
        raise BuildError(f"llama.cpp cannot load the built {gguf.name}: {exc}",
                         "The GGUF is unusable; nothing was registered.") from exc
