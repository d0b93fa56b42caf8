"""The reference route, llama.cpp's own: merged safetensors → convert_hf_to_gguf.py (F16) → llama_model_quantize."""

from __future__ import annotations

import shutil
from typing import Any

from lorag.build.cache import sha256_file
from lorag.build.convert import check_embedded_template, convert_hf
from lorag.build.merge import merge_model
from lorag.build.quantize import quantize_f16
from lorag.build.routes.base import Workspace
from lorag.build.verify import verify_stage
from lorag.build.workdir import stage_model_dir


class ReferenceRoute:
    """Merge into a full copy of the base, convert it with llama.cpp's converter, quantize, verify."""

    name = "reference"

    def build(self, ws: Workspace) -> dict[str, Any] | None:
        """Always builds (it is the route every other one is measured against)."""
        plan = ws.plan
        merged = ws.tmp / "merged"
        merged.mkdir()
        assert plan.weights is not None
        with ws.timed("merge"):
            merge_model(plan.base_dir, plan.weights, merged, ws.stage("merge"))
            template = stage_model_dir(plan.base_dir, plan.adapter_dir, merged)
        f16 = ws.tmp / "model-F16.gguf"
        with ws.timed("convert"):
            convert_hf(merged, f16, ws.stage("convert"), plan.ollama_name.split(":")[0])
            check_embedded_template(f16, template)
        with ws.timed("quantize"):
            out = quantize_f16(f16, ws.tmp, plan.qtype, ws.stage("quantize"))
        with ws.timed("verify"):
            fidelity = verify_stage(plan, merged, f16, out, ws.stage("verify"))
        shutil.rmtree(merged, ignore_errors=True)
        if out != f16:
            f16.unlink()
        return {"gguf": out.name, "sha256": {out.name: sha256_file(out)}, "size_bytes": out.stat().st_size,
                "fidelity": fidelity, "chat_template": template, "route": self.name}
