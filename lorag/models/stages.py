"""Build stages 2-8: merge, convert, quantize, verify, Modelfile, register, switch the config."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorag.atomic import atomic_write_text
from lorag.errors import BuildError
from lorag.models.build import BuildResult, timed
from lorag.models.progress import CancelFlag, ProgressFn, StageProgress
from lorag.models.validate import Plan, plan_build

if TYPE_CHECKING:
    from lorag.config import Config
    from lorag.models.build import BuildRequest

__all__ = ["Plan", "build_artifacts", "finish", "plan_build"]
log = logging.getLogger(__name__)


def build_artifacts(plan: Plan, tmp: Path, timings: dict[str, float], progress: ProgressFn | None,
                    cancel: CancelFlag | None) -> dict[str, Any]:
    """Produce the GGUF(s) in ``tmp`` and return the build record written to build.json."""
    from lorag.models.adapter_mode import build_adapter_mode

    if plan.mode == "adapter":
        record = build_adapter_mode(plan, tmp, timings, progress, cancel)
    else:
        record = _build_merged(plan, tmp, timings, progress, cancel)
    record.update({"key": plan.key, "mode": plan.mode, "quantization": plan.qtype, "base": str(plan.base_dir),
                   "adapter": str(plan.adapter_dir), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "build_stages": {k: round(v, 3) for k, v in timings.items()}})
    return record


def _build_merged(plan: Plan, tmp: Path, timings: dict[str, float], progress: ProgressFn | None,
                  cancel: CancelFlag | None) -> dict[str, Any]:
    fast = _build_single_pass(plan, tmp, timings, progress, cancel)
    if fast is not None:
        return fast
    return _build_reference(plan, tmp, timings, progress, cancel)


def _build_single_pass(plan: Plan, tmp: Path, timings: dict[str, float], progress: ProgressFn | None,
                       cancel: CancelFlag | None) -> dict[str, Any] | None:
    """The fast route (read each tensor once, merge, quantize, append); None when the reference route must run."""
    from lorag.models.cache import sha256_file
    from lorag.models.fast import FastPathUnsupported, build_gguf_single_pass, supports_fast_path
    from lorag.models.workdir import finetune_chat_template

    route = getattr(getattr(plan.settings, "build", None), "route", "auto")
    arch = _architecture(plan.base_dir)
    if route != "auto" or not supports_fast_path(arch):
        return None
    out = tmp / f"model-{plan.qtype}.gguf"
    template = finetune_chat_template(plan.adapter_dir, plan.base_dir)
    for stage in ("merge", "convert"):  # folded into the single pass; keep every stage bar meaningful
        folded = StageProgress(progress, stage, cancel)
        folded.update(100, message="single pass: read once, merge, quantize, write")
        folded.check_cancel()
    try:
        with timed(timings, "single_pass"):
            stats = build_gguf_single_pass(plan.base_dir, plan.adapter_dir, out, plan.qtype, template,
                                           progress=_renamed(progress, "quantize"), cancel=cancel, device="auto",
                                           model_name=plan.ollama_name.split(":")[0], dir_name="merged")
    except FastPathUnsupported as exc:
        log.info("fast build path not used (%s); using llama.cpp's convert + quantize route", exc)
        out.unlink(missing_ok=True)
        return None
    size = out.stat().st_size
    StageProgress(progress, "quantize", cancel).update(100, size, size, f"{out.name} written")
    with timed(timings, "verify"):
        fidelity = verify_single_pass(plan, out, StageProgress(progress, "verify", cancel))
    return {"gguf": out.name, "sha256": {out.name: sha256_file(out)}, "size_bytes": size,
            "fidelity": fidelity, "chat_template": template, "route": "single_pass",
            "single_pass": {k: v for k, v in stats.items() if isinstance(v, (int, float, str))}}


def _renamed(progress: ProgressFn | None, stage: str) -> ProgressFn | None:
    if progress is None:
        return None

    def forward(event: dict[str, Any]) -> None:
        progress({**event, "stage": stage})

    return forward


def _architecture(base_dir: Path) -> str:
    import json

    try:
        config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
        return str((config.get("architectures") or [""])[0])
    except (OSError, ValueError):
        return ""


def verify_single_pass(plan: Plan, out: Path, progress: StageProgress) -> dict[str, Any]:
    """Fidelity of a single-pass GGUF against base + adapter in transformers (there is no merged copy)."""
    from lorag.models import fidelity as fid

    tokenizer_dir = plan.adapter_dir if (plan.adapter_dir / "tokenizer_config.json").is_file() else plan.base_dir
    ref = _reference(plan, progress, tokenizer_dir, plan.base_dir, plan.adapter_dir)
    if isinstance(ref, dict):
        return ref
    ids, reference = ref
    progress.update(40, message=f"{out.name} logits (llama.cpp)")
    result = _measure(fid, reference, ids, out, None)
    assert result.kl_mean is not None
    if plan.qtype == "F16" and result.kl_mean > fid.F16_KL_LIMIT:
        raise BuildError(f"the F16 GGUF disagrees with the fine-tune (KL {result.kl_mean:.2e} > "
                         f"{fid.F16_KL_LIMIT:g}): the conversion is broken, not just lossy.",
                         "Set build.route: reference to use llama.cpp's converter, and report this.")
    data = result.to_dict()
    if plan.qtype == "F16":
        data["f16_kl_mean"] = result.kl_mean
    progress.update(100, message=f"KL {result.kl_mean:.4f}, top-1 {result.top1:.0%}")
    return data


def _build_reference(plan: Plan, tmp: Path, timings: dict[str, float], progress: ProgressFn | None,
                     cancel: CancelFlag | None) -> dict[str, Any]:
    """llama.cpp's own route: merged safetensors → convert_hf_to_gguf.py (F16) → llama_model_quantize."""
    from lorag.models.cache import sha256_file
    from lorag.models.convert import convert_hf
    from lorag.models.merge import merge_model
    from lorag.models.workdir import stage_model_dir

    merged = tmp / "merged"
    merged.mkdir()
    assert plan.weights is not None
    with timed(timings, "merge"):
        merge_model(plan.base_dir, plan.weights, merged, StageProgress(progress, "merge", cancel))
        template = stage_model_dir(plan.base_dir, plan.adapter_dir, merged)
    f16 = tmp / "model-F16.gguf"
    with timed(timings, "convert"):
        convert_hf(merged, f16, StageProgress(progress, "convert", cancel), plan.ollama_name.split(":")[0])
        check_embedded_template(f16, template)
    out = quantize_stage(f16, tmp, plan.qtype, timings, progress, cancel)
    with timed(timings, "verify"):
        fidelity = verify_stage(plan, merged, f16, out, StageProgress(progress, "verify", cancel))
    _remove(merged)
    if out != f16:
        f16.unlink()
    return {"gguf": out.name, "sha256": {out.name: sha256_file(out)}, "size_bytes": out.stat().st_size,
            "fidelity": fidelity, "chat_template": template, "route": "reference"}


def quantize_stage(f16: Path, tmp: Path, qtype: str, timings: dict[str, float], progress: ProgressFn | None,
                   cancel: CancelFlag | None, stem: str = "model") -> Path:
    """Quantize the F16 GGUF (F16 itself needs no work) and return the output path."""
    from lorag.models.quantize import quantize_gguf

    stage = StageProgress(progress, "quantize", cancel)
    with timed(timings, "quantize"):
        if qtype == "F16":
            stage.update(100, message="F16 requested: no quantization")
            return f16
        out = tmp / f"{stem}-{qtype}.gguf"
        quantize_gguf(f16, out, qtype, stage)
        return out


def check_embedded_template(gguf: Path, template: str | None) -> None:
    """The GGUF must carry the fine-tune's exact chat template (Ollama >= 0.30 and llama.cpp render with it)."""
    embedded = read_gguf_string(gguf, "tokenizer.chat_template")
    if template is None:
        return
    if embedded != template:
        raise BuildError(f"the converted GGUF's tokenizer.chat_template differs from the fine-tune's chat template "
                         f"({'missing' if embedded is None else 'different text'}).",
                         "Check the chat template files in the adapter and base directories.")


def read_gguf_string(gguf: Path, key: str) -> str | None:
    """One string metadata value of a GGUF file, or None."""
    from lorag.models.gguf_meta import gguf_string

    return gguf_string(gguf, key)


def _reference(plan: Plan, progress: StageProgress, tokenizer_dir: Path, model_dir: Path,
               adapter_dir: Path | None) -> tuple[list[int], Any] | dict[str, Any]:
    """Probe ids and fp32 reference logits of the fine-tune, or the "skipped" fidelity record saying why."""
    from lorag.models import fidelity as fid

    if not fid.fits_in_memory(plan.base_bytes):
        note = "fidelity check skipped: an fp32 reference of this model does not fit in RAM"
        plan.notes.append(note)
        progress.update(100, message=note)
        return {"kl_mean": None, "top1": None, "notes": [note]}
    progress.update(5, message="reference logits (transformers, fp32)")
    try:
        ids = fid.probe_ids(tokenizer_dir)
        return ids, fid.reference_logits(model_dir, ids, adapter_dir)
    except Exception as exc:  # transformers may not know this architecture; the GGUF can still be fine
        note = f"fidelity check skipped: transformers could not run the fine-tune ({type(exc).__name__}: {exc})"
        log.warning(note)
        plan.notes.append(note)
        return {"kl_mean": None, "top1": None, "notes": [note]}


def verify_stage(plan: Plan, ref_dir: Path, f16: Path, out: Path, progress: StageProgress,
                 adapter_dir: Path | None = None, lora: Path | None = None) -> dict[str, Any]:
    """Compare the GGUF(s) with the unquantized fine-tune in transformers; fail on a broken F16 conversion."""
    from lorag.models import fidelity as fid

    ref = _reference(plan, progress, ref_dir, ref_dir, adapter_dir)
    if isinstance(ref, dict):
        return ref
    ids, reference = ref
    progress.update(40, message="F16 GGUF logits (llama.cpp)")
    f16_fid = _measure(fid, reference, ids, f16, lora)
    assert f16_fid.kl_mean is not None
    if f16_fid.kl_mean > fid.F16_KL_LIMIT:
        raise BuildError(f"the F16 GGUF disagrees with the merged model (KL {f16_fid.kl_mean:.2e} > "
                         f"{fid.F16_KL_LIMIT:g}): the conversion is broken, not just lossy.",
                         "Report this with the base model's config.json; do not use this GGUF.")
    result = f16_fid if out == f16 else _measure(fid, reference, ids, out, lora)
    data = result.to_dict()
    data["f16_kl_mean"] = f16_fid.kl_mean
    progress.update(100, message=f"KL {result.kl_mean:.4f}, top-1 {result.top1:.0%}")
    return data


def _measure(fid: Any, reference: Any, ids: list[int], gguf: Path, lora: Path | None) -> Any:
    try:
        return fid.measure(reference, ids, gguf, lora)
    except (ValueError, RuntimeError, OSError) as exc:  # llama-cpp-python's load failures
        raise BuildError(f"llama.cpp cannot load the built {gguf.name}: {exc}",
                         "The GGUF is unusable; nothing was registered.") from exc


def finish(config: Config, request: BuildRequest, plan: Plan, record: dict[str, Any], timings: dict[str, float],
           progress: ProgressFn | None, cancel: CancelFlag | None) -> BuildResult:
    """Write the Modelfile, register with Ollama and switch the config, as requested."""
    from lorag.models.modelfile import model_spec, render_modelfile

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
                         adapter_gguf=adapter, warnings=[*spec.notes, *plan.notes])
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


def _warn_fidelity(config: Config, result: BuildResult) -> None:
    kl = result.fidelity.get("kl_mean")
    limit = config.settings.build.kl_warn
    if kl is not None and kl > limit:
        msg = (f"{result.quantization} moved the fine-tune's predictions by KL {kl:.3f} (> build.kl_warn {limit}); "
               "consider Q8_0 or Q6_K, or --mode adapter")
        log.warning(msg)
        result.warnings.append(msg)


def _register(config: Config, request: BuildRequest, plan: Plan, record: dict[str, Any], gguf: Path,
              adapter: Path | None, spec: Any, progress: ProgressFn | None, cancel: CancelFlag | None) -> str:
    from lorag.models.ollama import OllamaClient
    from lorag.models.registry import register_model

    host = request.ollama_host or config.settings.llm.ollama_host
    stage = StageProgress(progress, "register", cancel)
    with OllamaClient(host) as client:
        reg = register_model(client, plan.ollama_name, gguf, spec, stage, adapter=adapter,
                             digests=record.get("sha256") or {})
    return reg.name


def _register_skipped(config: Config, request: BuildRequest) -> str:
    """Why the register stage does not run ("" when it does); says so when Ollama is not even reachable."""
    if request.register == "ollama":
        return ""  # asked for: registering fails loudly if Ollama is down
    from lorag.errors import OllamaError
    from lorag.models.ollama import OllamaClient

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


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
