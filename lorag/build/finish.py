"""The last stages: write the Modelfile, register with Ollama, switch the config, as the request asks."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorag.atomic import atomic_write_text
from lorag.build.progress import CancelFlag, ProgressFn, StageProgress
from lorag.build.request import REGISTER_HINT, BuildPlan, BuildRequest, BuildResult, timed
from lorag.registry.modelfile import ModelSpec, model_spec, render_modelfile
from lorag.registry.ollama import OllamaClient
from lorag.registry.register import register_model

if TYPE_CHECKING:
    from lorag.config import Config

log = logging.getLogger(__name__)


def finish(config: Config, request: BuildRequest, plan: BuildPlan, record: dict[str, Any], timings: dict[str, float],
           progress: ProgressFn | None, cancel: CancelFlag | None) -> BuildResult:
    """Write the Modelfile, register with Ollama and switch the config, as requested."""
    final = plan.final_dir
    gguf = final / record["gguf"]
    adapter = final / record["adapter_gguf"] if record.get("adapter_gguf") else None
    llm = config.settings.llm
    with timed(timings, "modelfile"):
        spec = model_spec(record.get("chat_template"), llm.context, llm.temperature, llm.top_p)
        text = render_modelfile(gguf.name, spec, adapter.name if adapter else None)
        modelfile = final / "Modelfile"
        if not modelfile.is_file() or modelfile.read_text(encoding="utf-8") != text:
            atomic_write_text(modelfile, text)
        StageProgress(progress, "modelfile", cancel).update(100, message=f"template family: {spec.family}")
    result = BuildResult(gguf=gguf, modelfile=modelfile, quantization=plan.qtype, size_bytes=gguf.stat().st_size,
                         stages=timings, fidelity=_fidelity_summary(record.get("fidelity") or {}),
                         adapter_gguf=adapter, warnings=[*spec.notes, *plan.notes],
                         behaviour=_behaviour_summary((record.get("fidelity") or {}).get("behaviour") or {}),
                         mode=plan.mode)
    _warn_fidelity(config, result)
    skipped = _register_skipped(config, request)
    if skipped:
        if "unreachable" in skipped:
            result.warnings.append(f"register {skipped}")
        if progress is not None:  # the page shows the stage as skipped, not as done
            progress({"stage": "register", "percent": 0, "bytes_done": 0, "bytes_total": 0, "message": skipped,
                      "skipped": True})
    else:
        with timed(timings, "register"):
            result.registered_as = _register(config, request, plan, record, gguf, adapter, spec, progress, cancel)
    if request.update_config:
        with timed(timings, "config"):
            _switch_config(config, result)
            StageProgress(progress, "config", cancel).update(100, message=f"config updated: {config.path}")
    return result


def _fidelity_summary(data: dict[str, Any]) -> dict[str, Any]:
    keys = ("kl_mean", "top1", "f16_kl_mean", "sample", "notes")
    return {k: data[k] for k in keys if k in data}


def _behaviour_summary(data: dict[str, Any]) -> dict[str, Any]:
    # The record keeps every answer; the result keeps the score and the three worst answers (what a user checks).
    summary = {k: v for k, v in data.items() if k != "answers"}
    if data.get("answers"):
        summary["worst"] = sorted(data["answers"], key=lambda a: a.get("agreement", 1.0))[:3]
    return summary


def _warn_fidelity(config: Config, result: BuildResult) -> None:
    kl = result.fidelity.get("kl_mean")
    limit = config.settings.build.kl_warn
    if kl is not None and kl > limit:
        msg = (f"{result.quantization} moved the fine-tune's predictions by KL {kl:.3f} (> build.kl_warn {limit}); "
               "consider Q8_0 or Q6_K, or --mode adapter")
        log.warning(msg)
        result.warnings.append(msg)


def _register(config: Config, request: BuildRequest, plan: BuildPlan, record: dict[str, Any], gguf: Path,
              adapter: Path | None, spec: ModelSpec, progress: ProgressFn | None, cancel: CancelFlag | None) -> str:
    host = request.ollama_host or config.settings.llm.ollama_host
    stage = StageProgress(progress, "register", cancel)
    with OllamaClient(host, unreachable_hint=REGISTER_HINT) as client:
        reg = register_model(client, plan.ollama_name, gguf, spec, stage, adapter=adapter,
                             digests=record.get("sha256") or {})
    return reg.name


def _register_skipped(config: Config, request: BuildRequest) -> str:
    """Why the register stage does not run ("" when it does); says so when Ollama is not even reachable."""
    if request.register == "ollama":
        return ""  # asked for: registering fails loudly if Ollama is down
    from lorag.errors import OllamaError

    host = request.ollama_host or config.settings.llm.ollama_host
    try:
        with OllamaClient(host, timeout=3.0) as client:
            client.version()
    except OllamaError:
        return f"skipped: Ollama unreachable at {host}"
    return "skipped: not requested (build.registry: none)"


def _switch_config(config: Config, result: BuildResult) -> None:
    from lorag.config import update_config

    changes: dict[str, Any]
    if result.registered_as:
        changes = {"llm.backend": "ollama", "llm.model": result.registered_as, "llm.adapter": ""}
    else:
        changes = {"llm.backend": "llamacpp", "llm.model": str(result.gguf),
                   "llm.adapter": str(result.adapter_gguf) if result.adapter_gguf else ""}
    update_config(config.path, changes)
    result.config_updated = True
