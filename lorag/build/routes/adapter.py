"""The adapter route (build mode "adapter"): a quantized GGUF of the base (F16 conversion cached) plus a GGUF LoRA."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lorag.atomic import TMP_PREFIX
from lorag.build.cache import build_key, build_lock, hash_tree, sha256_file
from lorag.build.convert import check_embedded_template, convert_hf, convert_lora, converter_version
from lorag.build.progress import StageProgress
from lorag.build.quantize import quantize_f16
from lorag.build.request import BuildPlan
from lorag.build.routes.base import Workspace
from lorag.build.verify import verify_stage
from lorag.build.workdir import stage_model_dir


class AdapterRoute:
    """Convert the base once (cached), quantize it, convert the adapter, and verify base+LoRA in llama.cpp."""

    name = "adapter"

    def build(self, ws: Workspace) -> dict[str, Any] | None:
        """Build the base GGUF and the GGUF LoRA (plan_build already refused adapters a GGUF LoRA cannot carry)."""
        plan = ws.plan
        staged = ws.tmp / "base"
        with ws.timed("merge"):
            template = stage_model_dir(plan.base_dir, plan.adapter_dir, staged, link_weights=True)
            ws.stage("merge").update(100, message="adapter mode: no merge")
        convert = ws.stage("convert")
        with ws.timed("convert"):
            f16 = cached_base_gguf(plan, staged, convert)
            check_embedded_template(f16, template)
            lora = ws.tmp / "adapter-F16.gguf"
            convert_lora(plan.adapter_dir, staged, lora, convert)
        with ws.timed("quantize"):
            out = quantize_f16(f16, ws.tmp, plan.qtype, ws.stage("quantize"))
        if out == f16:  # F16 requested: the build dir must hold its own copy of the cached base
            out = ws.tmp / "model-F16.gguf"
            _link_or_copy(f16, out)
        with ws.timed("verify"):
            fidelity = verify_stage(plan, staged, f16, out, ws.stage("verify"), adapter_dir=plan.adapter_dir,
                                    lora=lora)
        shutil.rmtree(staged, ignore_errors=True)
        return {"gguf": out.name, "adapter_gguf": lora.name, "size_bytes": out.stat().st_size,
                "sha256": {out.name: sha256_file(out), lora.name: sha256_file(lora)},
                "fidelity": fidelity, "chat_template": template}


def cached_base_gguf(plan: BuildPlan, staged: Path, progress: StageProgress) -> Path:
    """The base's F16 GGUF with the fine-tune's tokenizer, converted once per base + tokenizer files."""
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
