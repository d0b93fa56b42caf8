"""LLMGenerator: read the config, inspect the model, plan against the hardware, and load the chosen backend.

Never silent: when the fine-tune itself cannot run, lorag builds a GGUF (llm.auto_quantize, through the ``build``
callable the caller hands in, so serving never imports the build pipeline), falls back to the configured Ollama
model with a WARNING that says why (llm.fallback), or stops with a PlanError naming the build command.

Usage::

    gen = load_generator(load_config(), build=build_for_generator)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from lorag.config import Config
from lorag.errors import PlanError
from lorag.generate.base import Generator
from lorag.inspect.hardware import Hardware, format_size
from lorag.inspect.info import ModelInfo
from lorag.inspect.model import is_ollama_name
from lorag.inspect.placement import Placement, PlanOption, inspect_configured, placement_for

log = logging.getLogger(__name__)

# (config, adapter dir, base dir or None, GGUF type) -> (GGUF, GGUF LoRA or None): builds what the plan needs.
BuildFn = Callable[[Config, Path, Path | None, str], tuple[Path, Path | None]]


def load_generator(config: Config, hardware: Hardware | None = None, build: BuildFn | None = None) -> Generator:
    """Return a ready generator for ``config.settings.llm`` (``hardware`` defaults to probing this machine).

    ``build`` runs the GGUF build when llm.auto_quantize asks for one; without it the generator stops with the
    build command instead.
    """
    llm = config.settings.llm
    if not llm.model:
        from lorag.generate.llamacpp import LlamaCppGenerator, bundled_model_path

        adapter = config.resolve(llm.adapter) if llm.adapter else None
        return LlamaCppGenerator(bundled_model_path(), lora_path=adapter, n_ctx=llm.context, threads=llm.threads)
    if llm.backend == "openai":
        from lorag.generate.openai import OpenAIGenerator

        return OpenAIGenerator(llm.model, llm.openai_base_url, llm.openai_api_key)
    if llm.backend == "ollama" or is_ollama_name(llm.model):
        return _ollama(config, llm.model)
    info = inspect_configured(config)
    plan = placement_for(config, info, hardware)
    log.info("plan: %s", plan.reason)
    return _load_option(config, info, plan, _pick(config, plan), build)


def build_command(info: ModelInfo, quantization: str = "Q4_K_M") -> str:
    """The exact command that turns this fine-tune into a GGUF that fits."""
    lora = info.adapter.path if info.adapter else Path(info.path)
    return (f"scripts/quantize_finetuned_for_ollama.py --lora-path {lora} --quantization {quantization} "
            f"(or `lorag model build --lora-path {lora} --quantization {quantization}`)")


def _pick(config: Config, plan: Placement) -> PlanOption | None:
    """The option to load now: the plan's choice (auto) or the best fitting one of the configured backend."""
    backend = config.settings.llm.backend
    if backend == "auto":
        return plan.choice
    wanted = [o for o in plan.options if o.backend == backend]
    if backend == "transformers":
        precision = {"none": "bf16"}.get(config.settings.llm.quantization, config.settings.llm.quantization)
        wanted = [o for o in wanted if o.precision in (precision, plan.info.quantization)]
    fitting = next((o for o in wanted if o.fits), None)
    if fitting is None:
        best = min(wanted, key=lambda o: o.memory_bytes) if wanted else None
        need = f"{best.label()} needs {format_size(best.memory_bytes)}" if best else "it has no option for this model"
        raise PlanError(f"llm.backend: {backend} cannot run {plan.info.path} here: {need}, {_room(plan)}.",
                        "Set llm.backend: auto, or use a smaller quantization.")
    return fitting


def _room(plan: Placement) -> str:
    hw = plan.hardware
    gpu = f"GPU has {format_size(hw.gpu_free)} free" if hw.gpus else "no GPU"
    return f"{gpu}, {format_size(hw.ram_available)} RAM free"


def _load_option(config: Config, info: ModelInfo, plan: Placement, option: PlanOption | None,
                 build: BuildFn | None) -> Generator:
    llm = config.settings.llm
    if option is not None and option.needs_build and config.settings.llm.backend == "auto":
        ready = plan.best_ready()
        if not llm.auto_quantize and ready is not None:
            log.warning("%s; using %s now — build the GGUF for a better fit: %s", plan.reason, ready.label(),
                        build_command(info, option.precision))
            option = ready
    if option is None or option.needs_build:
        if llm.auto_quantize and info.kind == "adapter" and option is not None and build is not None:
            return _build_and_load(config, info, plan, option, build)
        return _fallback_or_stop(config, info, plan, option)
    return _construct(config, info, option)


def _construct(config: Config, info: ModelInfo, option: PlanOption) -> Generator:
    llm = config.settings.llm
    if option.backend == "transformers":
        from lorag.generate.transformers import TransformersGenerator

        model_dir = Path(info.base.path) if info.base else Path(info.path)
        quant = option.precision if option.precision in ("4bit", "8bit") and info.kind != "bnb" else "none"
        return TransformersGenerator(model_dir, info.adapter.path if info.adapter else None, quant)
    if option.backend == "ollama":
        return _ollama(config, info.path)
    from lorag.generate.llamacpp import LlamaCppGenerator

    lora = info.details.get("gguf_lora")
    return LlamaCppGenerator(Path(info.path), lora_path=lora, n_ctx=llm.context, threads=llm.threads,
                             gpu_layers=gpu_layers(option, info.layers))


def gpu_layers(option: PlanOption, n_layers: int) -> int:
    """llama.cpp's n_gpu_layers for a planned placement: all (-1), a share of the layers, or none."""
    if option.placement == "gpu":
        return -1
    if option.placement == "offload" and option.memory_bytes > 0 and n_layers:
        return max(0, int(n_layers * option.gpu_bytes / option.memory_bytes))
    return 0


def _ollama(config: Config, name: str) -> Generator:
    from lorag.generate.ollama import OllamaGenerator

    llm = config.settings.llm
    return OllamaGenerator(name, llm.ollama_host, num_ctx=llm.context)


def _shortfall(info: ModelInfo, plan: Placement) -> str:
    first = plan.options[0] if plan.options else None
    what = "fine-tune" if info.kind == "adapter" else "model"
    if first is None:
        return plan.reason
    return f"{what} needs {format_size(first.memory_bytes)} in {first.precision}, {_room(plan)}"


def _fallback_or_stop(config: Config, info: ModelInfo, plan: Placement, option: PlanOption | None) -> Generator:
    llm = config.settings.llm
    if llm.fallback and llm.fallback != "none":
        log.warning("%s; using Ollama model %s (llm.fallback) — the fine-tune is NOT used. To run it: %s",
                    _shortfall(info, plan), llm.fallback, build_command(info, _quant(config, option)))
        return _ollama(config, llm.fallback)
    if info.kind == "adapter":
        raise PlanError(f"{plan.reason}.", f"Build a GGUF that fits: {build_command(info, _quant(config, option))}; "
                        "or set llm.auto_quantize: true to build it automatically.")
    raise PlanError(f"{plan.reason}.", "Use a smaller quantization or a machine with more memory.")


def _quant(config: Config, option: PlanOption | None) -> str:
    if option is not None and option.backend == "llamacpp":
        return option.precision
    return config.settings.build.quantization


def _build_and_load(config: Config, info: ModelInfo, plan: Placement, option: PlanOption,
                    build: BuildFn) -> Generator:
    """Run the build (llm.auto_quantize) and serve the GGUF it produces."""
    from lorag.generate.llamacpp import LlamaCppGenerator

    assert info.adapter is not None
    log.warning("%s; building GGUF %s from %s (llm.auto_quantize)", _shortfall(info, plan), option.precision,
                info.adapter.path)
    gguf, lora = build(config, info.adapter.path, Path(info.base.path) if info.base else None, option.precision)
    llm = config.settings.llm
    return LlamaCppGenerator(gguf, lora_path=lora, n_ctx=llm.context, threads=llm.threads)
