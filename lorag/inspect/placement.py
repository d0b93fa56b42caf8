"""Rank the ways of running a model on given hardware and choose the best one that fits.

``placement_for`` is the one composition of inspect → plan that the CLI, the server and the generator share: the
same config gives the same search paths, context, quantization and so the same answer everywhere.

Usage::

    plan = placement_for(load_config(), "outputs/lora_X")   # this machine; or hardware=pretend_hardware(...)
    print(plan.reason)             # one sentence
    plan.options[plan.chosen]      # None when nothing fits
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorag.inspect.hardware import Hardware, format_size, probe_hardware
from lorag.inspect.info import ModelInfo
from lorag.inspect.memory import kv_cache_bytes, total_bytes, weights_bytes
from lorag.inspect.model import inspect_adapter, inspect_path

if TYPE_CHECKING:
    from lorag.config import Config

CUDA_RESERVE = 512 * 2**20  # CUDA context and allocator slack that no model byte can use
RAM_RESERVE = 2 * 2**30  # left for the OS, the RAG store and the web server
GGUF_CHOICES = ("Q8_0", "Q5_K_M", "Q4_K_M")


@dataclass
class PlanOption:
    """One way of running the model, with its predicted memory and whether it fits."""

    backend: str  # "transformers" | "llamacpp" | "ollama"
    precision: str  # "bf16", "8bit", "4bit", or a GGUF type
    placement: str  # "gpu" | "offload" | "cpu"
    memory_bytes: int
    fits: bool
    needs_build: bool = False  # a GGUF must be built (merge → convert → quantize) first
    gpu_bytes: int = 0
    ram_bytes: int = 0
    weights_bytes: int = 0
    kv_bytes: int = 0
    note: str = ""

    def label(self) -> str:
        where = {"gpu": "fully on the GPU", "offload": "partly offloaded to the CPU",
                 "cpu": "on the CPU"}[self.placement]
        name = {"transformers": "transformers", "llamacpp": "GGUF", "ollama": "Ollama"}[self.backend]
        return f"{name} {self.precision} {where}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"label": self.label()}


@dataclass
class Placement:
    """Where and how a model runs: options in order of preference, the chosen index (None when nothing fits)
    and a one-sentence reason."""

    options: list[PlanOption]
    chosen: int | None
    reason: str
    n_ctx: int
    hardware: Hardware
    info: ModelInfo = field(repr=False)

    @property
    def choice(self) -> PlanOption | None:
        return self.options[self.chosen] if self.chosen is not None else None

    def best_ready(self) -> PlanOption | None:
        """The most preferred option that fits and needs no build."""
        return next((o for o in self.options if o.fits and not o.needs_build), None)

    def to_dict(self) -> dict[str, Any]:
        code, params = reason_parts(self)
        return {"options": [o.to_dict() for o in self.options], "chosen": self.chosen, "reason": self.reason,
                "reason_code": code, "reason_params": params, "n_ctx": self.n_ctx,
                "hardware": self.hardware.to_dict(), "model": self.info.to_dict()}


def _placements(need: int, hw: Hardware) -> list[tuple[str, bool, int, int]]:
    """(placement, fits, gpu bytes, ram bytes) for GPU, partial offload and CPU."""
    gpu_room = max(hw.gpu_free - CUDA_RESERVE, 0)
    ram_room = max(hw.ram_available - RAM_RESERVE, 0)
    out = []
    if hw.gpus:
        out.append(("gpu", need <= gpu_room, need, 0))
        if need > gpu_room:  # offloading only makes sense when the whole model does not fit
            out.append(("offload", need <= gpu_room + ram_room, gpu_room, need - gpu_room))
    out.append(("cpu", need <= ram_room, 0, need))
    return out


def _option(info: ModelInfo, backend: str, precision: str, n_ctx: int, hw: Hardware, build: bool) -> list[PlanOption]:
    w = weights_bytes(info, precision)
    kv = kv_cache_bytes(info, n_ctx)
    need = total_bytes(info, precision, n_ctx)
    out = []
    for placement, fits, gpu, ram in _placements(need, hw):
        if backend == "transformers" and placement == "offload":
            continue  # accelerate's CPU offload is too slow to be worth planning for
        if backend == "transformers" and precision in ("8bit", "4bit") and placement != "gpu":
            continue  # bitsandbytes needs a CUDA GPU
        out.append(PlanOption(backend, precision, placement, need, fits, build, gpu, ram, w, kv))
    return out


def _candidates(info: ModelInfo, hw: Hardware, n_ctx: int, quant: str, bnb: str) -> list[PlanOption]:
    if info.kind == "ollama":
        return [PlanOption("ollama", info.quantization or "?", "gpu" if hw.gpus else "cpu", 0, True,
                           note="Ollama manages its own memory")]
    if info.kind == "gguf":
        own = _option(info, "llamacpp", info.quantization or "F16", n_ctx, hw, False)
        return own + [PlanOption("ollama", o.precision, o.placement, o.memory_bytes, o.fits, False, o.gpu_bytes,
                                 o.ram_bytes, o.weights_bytes, o.kv_bytes, "register the GGUF with Ollama")
                      for o in own if o.placement != "offload"]
    hf: list[PlanOption] = []
    if info.kind == "bnb":
        hf += _option(info, "transformers", info.quantization, n_ctx, hw, False)
    else:
        hf += _option(info, "transformers", "bf16", n_ctx, hw, False)
        hf += _option(info, "transformers", "8bit", n_ctx, hw, False)
        hf += _option(info, "transformers", "4bit", n_ctx, hw, False)
    ggufs = [quant] + [q for q in GGUF_CHOICES if q != quant]
    gg = [o for q in ggufs for o in _option(info, "llamacpp", q, n_ctx, hw, True)]
    ollama = [PlanOption("ollama", o.precision, o.placement, o.memory_bytes, o.fits, True, o.gpu_bytes, o.ram_bytes,
                         o.weights_bytes, o.kv_bytes, "build, then register")
              for o in _option(info, "llamacpp", quant, n_ctx, hw, True) if o.placement != "offload"]
    return _rank(hf, gg, ollama, bnb)


def _rank(hf: list[PlanOption], gg: list[PlanOption], ollama: list[PlanOption], bnb: str) -> list[PlanOption]:
    """Preference: exact weights on GPU, then GGUF on GPU, bitsandbytes, offload, CPU; Ollama last."""
    def pick(opts: list[PlanOption], placement: str, precisions: tuple[str, ...] = ()) -> list[PlanOption]:
        return [o for o in opts if o.placement == placement and (not precisions or o.precision in precisions)]

    bnb_order = ("4bit", "8bit") if bnb != "8bit" else ("8bit", "4bit")
    bnb_opts = [o for p in bnb_order for o in pick(hf, "gpu", (p,))]
    order = pick(hf, "gpu", ("bf16",))
    order += bnb_opts + pick(gg, "gpu") if bnb in ("4bit", "8bit") else pick(gg, "gpu") + bnb_opts
    order += pick(gg, "offload") + pick(gg, "cpu") + pick(hf, "cpu") + ollama
    return order


def plan_model(info: ModelInfo, hw: Hardware, n_ctx: int = 4096, quantization: str = "Q4_K_M",
               bnb: str = "none") -> Placement:
    """Rank the options for ``info`` on ``hw`` with ``n_ctx`` context and choose the first that fits.

    ``quantization`` is the GGUF type preferred among GGUF options (config build.quantization);
    ``bnb`` (llm.quantization) moves bitsandbytes 4-/8-bit ahead of GGUF builds when set.
    """
    options = _candidates(info, hw, n_ctx, quantization.upper(), bnb)
    chosen = next((i for i, o in enumerate(options) if o.fits), None)
    plan = Placement(options, chosen, "", n_ctx, hw, info)
    plan.reason = explain(plan)
    return plan


def _ctx(n: int) -> str:
    return f"{n // 1024}k" if n % 1024 == 0 else str(n)


def reason_parts(plan: Placement) -> tuple[str, dict[str, str]]:
    """Why the chosen option was chosen, as a code and its parameters (the page words it in its own language)."""
    info, hw = plan.info, plan.hardware
    params = {"what": "fine-tune" if info.kind == "adapter" else "model", "ctx": _ctx(plan.n_ctx),
              "gpu_free": format_size(hw.gpu_free) if hw.gpus else "", "ram_free": format_size(hw.ram_available)}
    first, choice = (plan.options[0] if plan.options else None), plan.choice
    if choice is None:
        smallest = min(plan.options, key=lambda o: o.memory_bytes) if plan.options else None
        if smallest is not None:
            params |= {"smallest": smallest.label(), "smallest_size": format_size(smallest.memory_bytes)}
        return "plan_nothing_fits", params
    if info.kind == "ollama":
        return "plan_ollama", params | {"path": str(info.path)}
    params |= {"label": choice.label(), "size": format_size(choice.memory_bytes)}
    if first is choice:
        return "plan_fits_first", params
    full = next((o for o in plan.options if o.precision in ("bf16", info.quantization)), first)
    assert full is not None
    return "plan_fits_other", params | {"precision": full.precision, "full_size": format_size(full.memory_bytes)}


def explain(plan: Placement) -> str:
    """One sentence saying why the chosen option was chosen (or that nothing fits)."""
    code, p = reason_parts(plan)
    room = f"GPU has {p['gpu_free']} free" if p["gpu_free"] else f"no GPU, {p['ram_free']} RAM free"
    if code == "plan_nothing_fits":
        need = f"; the smallest option, {p['smallest']}, needs {p['smallest_size']}" if "smallest" in p else ""
        return f"nothing fits: {room} and {p['ram_free']} RAM free{need} with {p['ctx']} context"
    if code == "plan_ollama":
        return f"{p['path']} is an Ollama model; Ollama runs it"
    if code == "plan_fits_first":
        return f"{p['what']} needs {p['size']} as {p['label']}, {room}; it fits"
    return (f"{p['what']} needs {p['full_size']} in {p['precision']}, {room}; "
            f"{p['label']} ({p['size']} with {p['ctx']} context) fits")


def model_search_paths(config: Config) -> list[str]:
    """models.search_paths with relative entries resolved against the config file's folder."""
    return [str(config.resolve(s)) for s in config.settings.models.search_paths]


def inspect_configured(config: Config) -> ModelInfo:
    """Inspect llm.model, with llm.adapter applied: a PEFT dir on an HF base, or a GGUF LoRA on a GGUF."""
    llm, search = config.settings.llm, model_search_paths(config)
    model = config.resolve(llm.model)
    if not llm.adapter:
        return inspect_path(model, search, llm.ollama_host)
    adapter = config.resolve(llm.adapter)
    if adapter.is_file():  # a GGUF LoRA for llama.cpp: plan for the base GGUF, apply the LoRA at load time
        info = inspect_path(model, search, llm.ollama_host)
        info.details["gguf_lora"] = str(adapter)
        return info
    return inspect_adapter(adapter, search, base=model)


def placement_for(config: Config, target: str | Path | ModelInfo | None = None, hardware: Hardware | None = None,
                  n_ctx: int | None = None) -> Placement:
    """Plan ``target`` (a path or Ollama name, an inspected model, or None for the configured llm.model and
    llm.adapter) on ``hardware`` (default: probe this machine) with the config's context and quantization."""
    if isinstance(target, ModelInfo):
        info = target
    elif target is None:
        info = inspect_configured(config)
    else:
        info = inspect_path(target, model_search_paths(config), config.settings.llm.ollama_host)
    settings = config.settings
    return plan_model(info, hardware or probe_hardware(), n_ctx or settings.llm.context,
                      settings.build.quantization, settings.llm.quantization)
