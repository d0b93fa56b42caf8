"""Build mode "adapter": a quantized GGUF of the base (its F16 conversion cached) plus a GGUF LoRA."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lorag.atomic import TMP_PREFIX
from lorag.models.build import timed
from lorag.models.progress import CancelFlag, ProgressFn, StageProgress
from lorag.models.validate import Plan


def build_adapter_mode(plan: Plan, tmp: Path, timings: dict[str, float], progress: ProgressFn | None,
                       cancel: CancelFlag | None) -> dict[str, Any]:
    """Convert the base once (cached), quantize it, convert the adapter, and verify base+LoRA in llama.cpp."""
    from lorag.models.cache import sha256_file
    from lorag.models.convert import convert_lora
    from lorag.models.stages import check_embedded_template, quantize_stage, verify_stage
    from lorag.models.workdir import stage_model_dir

    staged = tmp / "base"
    with timed(timings, "merge"):
        template = stage_model_dir(plan.base_dir, plan.adapter_dir, staged, link_weights=True)
        StageProgress(progress, "merge", cancel).update(100, message="adapter mode: no merge")
    convert = StageProgress(progress, "convert", cancel)
    with timed(timings, "convert"):
        f16 = cached_base_gguf(plan, staged, convert)
        check_embedded_template(f16, template)
        lora = tmp / "adapter-F16.gguf"
        convert_lora(plan.adapter_dir, staged, lora, convert)
    out = quantize_stage(f16, tmp, plan.qtype, timings, progress, cancel)
    if out == f16:  # F16 requested: the build dir must hold its own copy of the cached base
        out = tmp / "model-F16.gguf"
        _link_or_copy(f16, out)
    with timed(timings, "verify"):
        fidelity = verify_stage(plan, staged, f16, out, StageProgress(progress, "verify", cancel),
                                adapter_dir=plan.adapter_dir, lora=lora)
    shutil.rmtree(staged, ignore_errors=True)
    return {"gguf": out.name, "adapter_gguf": lora.name, "size_bytes": out.stat().st_size,
            "sha256": {out.name: sha256_file(out), lora.name: sha256_file(lora)},
            "fidelity": fidelity, "chat_template": template}


def cached_base_gguf(plan: Plan, staged: Path, progress: StageProgress) -> Path:
    """The base's F16 GGUF with the fine-tune's tokenizer, converted once per base + tokenizer files."""
    from lorag.models.cache import build_key, build_lock, hash_tree
    from lorag.models.convert import convert_hf, converter_version

    side = staged.parent / "side-files"
    side.mkdir(exist_ok=True)
    for entry in staged.iterdir():
        if not entry.is_symlink():
            shutil.copy2(entry, side / entry.name)
    key = build_key({"base": plan.base_hash, "files": hash_tree(side), "converter": converter_version()})
    shutil.rmtree(side)
    bases = plan.output_dir / "bases"
    name = f"base-{key[:16]}"
    target = bases / f"{name}-F16.gguf"
    # Builds of different adapters on one base share this file: the second waits for the first's conversion.
    with build_lock(bases, name, wait_s=6 * 3600):
        if target.is_file():
            progress.update(100, message=f"base GGUF cached: {target.name}")
            return target
        fd, partial = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{name}-", suffix=".gguf", dir=bases)
        os.close(fd)
        try:
            convert_hf(staged, Path(partial), progress)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    return target


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
