"""The single-pass route: read each base tensor once, merge, quantize and append it to the GGUF (CPU or GPU)."""

from __future__ import annotations

import logging
from typing import Any

from lorag.build.cache import sha256_file
from lorag.build.fast import FastPathUnsupported, build_gguf_single_pass, supports_fast_path
from lorag.build.progress import ProgressFn
from lorag.build.routes.base import Workspace
from lorag.build.verify import verify_single_pass
from lorag.inspect.chat_template import finetune_chat_template
from lorag.inspect.files import read_json_or_empty

log = logging.getLogger(__name__)


class SinglePassRoute:
    """The fast route; declines (None) for build.route: reference, unsupported architectures and adapters."""

    name = "single_pass"

    def build(self, ws: Workspace) -> dict[str, Any] | None:
        """Build in one streaming pass, or return None so the reference route runs."""
        plan = ws.plan
        route = getattr(getattr(plan.settings, "build", None), "route", "auto")
        architectures = read_json_or_empty(plan.base_dir / "config.json").get("architectures") or [""]
        if route != "auto" or not supports_fast_path(str(architectures[0])):
            return None
        out = ws.tmp / f"model-{plan.qtype}.gguf"
        template = finetune_chat_template(plan.adapter_dir, plan.base_dir)
        for stage in ("merge", "convert"):  # folded into the single pass; keep every stage bar meaningful
            folded = ws.stage(stage)
            folded.update(100, message="single pass: read once, merge, quantize, write")
            folded.check_cancel()
        try:
            with ws.timed("single_pass"):
                stats = build_gguf_single_pass(plan.base_dir, plan.adapter_dir, out, plan.qtype, template,
                                               progress=_renamed(ws.progress, "quantize"), cancel=ws.cancel,
                                               device="auto", model_name=plan.ollama_name.split(":")[0],
                                               dir_name="merged")
        except FastPathUnsupported as exc:
            log.info("fast build path not used (%s); using llama.cpp's convert + quantize route", exc)
            out.unlink(missing_ok=True)
            return None
        size = out.stat().st_size
        ws.stage("quantize").update(100, size, size, f"{out.name} written")
        with ws.timed("verify"):
            fidelity = verify_single_pass(plan, out, ws.stage("verify"))
        return {"gguf": out.name, "sha256": {out.name: sha256_file(out)}, "size_bytes": size,
                "fidelity": fidelity, "chat_template": template, "route": self.name,
                "single_pass": {k: v for k, v in stats.items() if isinstance(v, int | float | str)}}


def _renamed(progress: ProgressFn | None, stage: str) -> ProgressFn | None:
    if progress is None:
        return None

    def forward(event: dict[str, Any]) -> None:
        progress({**event, "stage": stage})

    return forward
