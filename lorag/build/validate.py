"""Build stage 1: check the request, the adapter against its base, the disk, and where the result will go."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from lorag.build import request as build_request
from lorag.build.cache import build_key, clean_stale_builds, hash_tree
from lorag.build.checks import adapter_directory, check_inside_roots, check_model_name, check_shards, writable_output
from lorag.build.convert import converter_version
from lorag.build.merge import load_adapter_weights, refuse_quantized_base
from lorag.build.progress import StageProgress
from lorag.build.quantize import normalize_qtype, predicted_size
from lorag.build.request import REGISTER_HINT, BuildPlan, BuildRequest
from lorag.errors import BuildError, ConfigError, DiskSpaceError
from lorag.inspect.adapter import AdapterInfo, check_adapter_matches_base, read_adapter, resolve_base
from lorag.inspect.placement import model_search_paths
from lorag.registry.ollama import OllamaClient

if TYPE_CHECKING:
    from lorag.config import Config

__all__ = ["BuildPlan", "check_before_building", "clean_stale_builds", "plan_build"]


def plan_build(config: Config, request: BuildRequest, progress: StageProgress) -> BuildPlan:
    """Validate the request and return the build plan; every failure here leaves no trace."""
    qtype = normalize_qtype(request.quantization)
    if request.mode not in ("merge", "adapter"):
        raise BuildError(f"unknown build mode {request.mode!r}.", "Use merge or adapter.")
    check_model_name(request.name)
    adapter_dir = adapter_directory(request.lora_path)
    search = model_search_paths(config)
    progress.update(5, message=f"reading adapter {adapter_dir}")
    check_inside_roots("adapter", adapter_dir, request.roots)
    info = read_adapter(adapter_dir, search)
    base_dir = _find_base(request, info, search).absolute()
    check_inside_roots("base model", base_dir, request.roots)
    check_shards(base_dir)
    refuse_quantized_base(base_dir)
    if request.mode == "adapter" and info.touches_embeddings:
        raise BuildError(
            "this adapter changes embed_tokens/lm_head, which a GGUF LoRA cannot carry (llama.cpp applies LoRA "
            "only to the linear layers), so adapter mode would silently drop part of the fine-tune.",
            "Use --mode merge.")
    if request.update_config:
        _check_config_writable(config.path)
    if request.register == "ollama":
        _check_ollama(request.ollama_host or config.settings.llm.ollama_host)
    output_dir = writable_output(Path(request.output_dir or config.output_dir))
    clean_stale_builds(output_dir)
    progress.update(20, message="hashing base weights and adapter (cached after the first build)")
    plan = _make_plan(request, info, base_dir, adapter_dir, qtype, output_dir, progress)
    plan.settings = config.settings
    if not (plan.final_dir / "build.json").is_file():
        # Not built before: check everything the build depends on (an identical earlier build already passed).
        check_before_building(plan, progress)
    progress.update(100, message=f"ok: {plan.final_dir.name}")
    return plan


def check_before_building(plan: BuildPlan, progress: StageProgress) -> None:
    """Adapter against base, adapter tensors (rank, NaN/Inf) and free disk: what a cache hit may skip."""
    if plan.weights is not None:
        return
    progress.update(40, message=f"checking adapter against base {plan.base_dir}")
    check_adapter_matches_base(plan.info, plan.base_dir)
    plan.weights = load_adapter_weights(plan.adapter_dir)
    preflight_disk(plan)


def _find_base(request: BuildRequest, info: AdapterInfo, search: list[str]) -> Path:
    if request.base is not None:
        base = Path(request.base).expanduser()
        if not (base / "config.json").is_file():
            raise BuildError(f"base model not found at {base} (no config.json there).",
                             "Pass the directory of the base model's Hugging Face checkpoint with --base.")
        return base
    return info.base_path or resolve_base(info.base_name, search, info.path)


def _make_plan(request: BuildRequest, info: AdapterInfo, base_dir: Path, adapter_dir: Path, qtype: str,
               output_dir: Path, progress: StageProgress) -> BuildPlan:
    total = sum(p.stat().st_size for p in base_dir.iterdir() if p.is_file())
    hashed = [0]

    def on_bytes(n: int) -> None:
        # Only files not hashed before reach here (a 64 GB base takes about a minute, once).
        hashed[0] += n
        progress.update(20 + 20 * hashed[0] / max(total, 1), hashed[0], total, "hashing base weights")

    base_hash = hash_tree(base_dir, output_dir, on_bytes)
    parts = {"base": base_hash, "adapter": hash_tree(adapter_dir, output_dir), "quantization": qtype,
             "converter": converter_version(), "mode": request.mode}
    key = build_key(parts)
    dir_name, ollama_name = model_names(request.name, adapter_dir, qtype)
    dir_name = f"{dir_name}-{key[:12]}"
    base_bytes = sum(p.stat().st_size for p in base_dir.glob("*.safetensors"))
    return BuildPlan(adapter_dir=adapter_dir, base_dir=base_dir, info=info, qtype=qtype,
                mode=request.mode, dir_name=dir_name, ollama_name=ollama_name, output_dir=output_dir,
                final_dir=output_dir / dir_name, key=key, base_hash=base_hash, base_bytes=base_bytes)


def model_names(name: str | None, adapter_dir: Path, qtype: str) -> tuple[str, str]:
    """(artifact directory stem, Ollama model name) from --name or the adapter folder's name."""
    raw = (name or adapter_dir.resolve().name).strip()
    model, _, tag = raw.partition(":")
    model = re.sub(r"[^a-z0-9._-]+", "-", model.lower()).strip("-._") or "lorag-model"
    tag = re.sub(r"[^a-z0-9._-]+", "-", tag.lower()).strip("-") or qtype.lower()
    return model, f"{model}:{tag}"


def preflight_disk(plan: BuildPlan) -> None:
    """Refuse to start when the output disk cannot hold the build's temporary files plus the result."""
    f16 = plan.base_bytes  # bf16/fp16 base: the F16 GGUF is about as large as the weights
    needed = int((plan.base_bytes if plan.mode == "merge" else 0) + f16 + predicted_size(f16, plan.qtype))
    needed = int(needed * 1.1) + 64 * 1024 * 1024
    free = build_request.disk_free(plan.output_dir)  # looked up here so tests can simulate a full disk
    if free < needed:
        raise DiskSpaceError(
            f"not enough disk space in {plan.output_dir}: the build needs about {_gb(needed)} "
            f"(merged weights, F16 GGUF and the {plan.qtype} result) but only {_gb(free)} is free.",
            "Free some space or pass --output on a larger disk.")


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _check_config_writable(path: Path) -> None:
    target = path if path.exists() else path.parent
    # Mode bits too: root passes os.access() on a 0444 file, but the user marked it read-only on purpose.
    no_write_bits = path.exists() and not path.stat().st_mode & 0o222
    if no_write_bits or not os.access(target, os.W_OK) or (path.exists() and not os.access(path.parent, os.W_OK)):
        raise ConfigError(f"{path} is read-only, so the build could not switch the model; nothing was built.",
                          "Make the config writable, or build without --update-config.")


def _check_ollama(host: str) -> None:
    with OllamaClient(host, timeout=5.0, unreachable_hint=REGISTER_HINT) as client:
        client.version()
