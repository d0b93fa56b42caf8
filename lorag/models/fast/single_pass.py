"""Single-pass build: read each base tensor once, merge its LoRA delta, quantize, append to the GGUF.

No merged checkpoint and no F16 GGUF touch the disk. Metadata, tensor names, shapes and small tensors come from
llama.cpp's own converter run lazily on a staged directory (see skeleton.py); per-tensor types follow
llama-quantize's mixture rules (mixture.py); on the CPU the data is quantized by ggml itself (byte-identical
output), on a GPU by torch ports of the same algorithms (gpu_quant.py).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lorag.errors import BuildError
from lorag.models.fast import arch, gpu_quant
from lorag.models.fast.ggml import GGML_TYPE_NAMES, quantize_rows, tensor_nbytes
from lorag.models.fast.gguf_writer import OutputTensor, TensorStream, header_bytes, quantized_kv
from lorag.models.fast.lora import FastPathUnsupported, LoraWeights, load_lora
from lorag.models.fast.mixture import FTYPES, MixturePlanner, quantize_order
from lorag.models.fast.reader import Prefetcher, TensorLocation, index_model
from lorag.models.fast.skeleton import Skeleton, SkeletonTensor, read_skeleton, remove_quietly, stage_model_dir

ProgressFn = Callable[[dict[str, Any]], None]


def supports_fast_path(architecture: str) -> bool:
    """True when the single-pass build handles this HF architecture (e.g. "Qwen2ForCausalLM") natively."""
    return arch.supports(architecture)


def build_gguf_single_pass(
    base_dir: Path, adapter_dir: Path | None, out_path: Path, qtype: str, chat_template: str | None,
    progress: ProgressFn | None = None, cancel: Any = None, device: str = "auto", *,
    model_name: str | None = None, threads: int = 0, read_ahead_bytes: int = 2 << 30,
) -> dict[str, Any]:
    """Build ``out_path`` (GGUF, ``qtype``) from a base model and an optional LoRA adapter in one pass.

    ``model_name`` is the directory name the reference converter would see (it feeds general.name etc.);
    it defaults to the base directory's name. Raises FastPathUnsupported when the reference route must be used.
    """
    from lorag.atomic import atomic_open
    from lorag.models.progress import StageProgress

    started = time.monotonic()
    qtype = qtype.strip().upper()
    if qtype not in FTYPES:
        raise FastPathUnsupported(f"the fast build path does not produce {qtype}.")
    hf_arch = _architecture(base_dir)
    if not supports_fast_path(hf_arch):
        raise FastPathUnsupported(f"the fast build path does not handle {hf_arch}.")
    stage = StageProgress(progress, "fast_build", cancel)
    dev = _pick_device(device)
    lora = load_lora(adapter_dir) if adapter_dir is not None else LoraWeights({}, False)
    lora = lora.to(dev)
    sources = _sources(base_dir, lora)
    # Reading starts now, while llama.cpp's converter works out the metadata in another process.
    reader = Prefetcher([(n, sources[n]) for n in quantize_order(list(sources))], read_ahead_bytes)
    reader.start()
    scratch = out_path.parent / f".{out_path.name}.fast"
    remove_quietly(scratch)
    stats = _Stats()
    try:
        staged = stage_model_dir(base_dir, adapter_dir, chat_template, scratch / (model_name or base_dir.name))
        from lorag.models.convert import ensure_converters

        skeleton = read_skeleton(staged, scratch / "skeleton", ensure_converters())
        t_meta = time.monotonic() - started
        plan = _plan(skeleton, qtype)
        streamed = [out.name for out, src in plan if src.small_offset < 0]
        if [n for n in quantize_order(list(sources)) if n in set(streamed)] != streamed or set(streamed) - set(sources):
            raise FastPathUnsupported(f"the converter's tensors differ from the fast path's: {sorted(streamed)[:4]}")
        if set(sources) - set(streamed):  # e.g. a tied lm_head the converter drops: read only what is written
            reader.close()
            reader = Prefetcher([(n, sources[n]) for n in streamed], read_ahead_bytes)
            reader.start()
        header = header_bytes(quantized_kv([(k, raw) for k, raw, _, _ in skeleton.kv], FTYPES[qtype][1]),
                              [out for out, _ in plan], skeleton.alignment)
        with atomic_open(out_path, "wb") as fh:
            fh.write(header)
            stream = TensorStream(fh, skeleton.alignment)
            _stream_tensors(plan, reader, skeleton, lora, dev, stream, stage, stats, threads)
    finally:
        reader.close()
        remove_quietly(scratch)
    total = time.monotonic() - started
    stats.busy["read"] = reader.seconds
    return {
        "gguf": str(out_path), "quantization": qtype, "device": dev, "size_bytes": out_path.stat().st_size,
        "seconds": round(total, 3), "stages": {"metadata": round(t_meta, 3), "stream": round(total - t_meta, 3)},
        "bytes_read": sum(loc.nbytes for loc in sources.values()), "tensors": len(plan), "types": stats.types,
        "profile": {k: round(v, 3) for k, v in stats.busy.items()},
    }


class _Stats:
    def __init__(self) -> None:
        self.bytes_read = 0
        self.types: dict[str, int] = {}
        self.busy: dict[str, float] = {"read": 0.0, "merge": 0.0, "quantize": 0.0, "write": 0.0}


def _architecture(base_dir: Path) -> str:
    try:
        config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read {base_dir / 'config.json'}: {exc}", "Pass the base model with --base.") from exc
    if config.get("quantization_config"):
        raise FastPathUnsupported("the base model is quantized; the fast path needs 16-bit weights.")
    return str((config.get("architectures") or ["?"])[0])


def _pick_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def _plan(skeleton: Skeleton, qtype: str) -> list[tuple[OutputTensor, SkeletonTensor]]:
    """Output tensors in llama-quantize's order with llama-quantize's types."""
    by_name = {t.name: t for t in skeleton.tensors}
    names = quantize_order(list(by_name))
    n_layer = int(skeleton.value(f"{skeleton.gguf_arch}.block_count", 0))
    planner = MixturePlanner(qtype, n_layer, arch.model_type_is_70b(skeleton.gguf_arch, n_layer, skeleton.hparams),
                             names)
    plan = []
    for name in names:
        src = by_name[name]
        out_type = planner.choose(name, src.shape, GGML_TYPE_NAMES[src.ggml_type])
        plan.append((OutputTensor(name, src.shape, out_type, tensor_nbytes(out_type, src.shape)), src))
    return plan


def _sources(base_dir: Path, lora: LoraWeights) -> dict[str, TensorLocation]:
    """GGUF name → safetensors location for every tensor the fast path streams."""
    index = index_model(base_dir)
    unknown = [k for k in lora.pairs if k not in index]
    if unknown:
        raise BuildError(f"the adapter changes weights the base model does not have ({', '.join(unknown[:4])}).",
                         "The adapter was trained on a different architecture; pass the right --base.")
    sources = {}
    for hf_name, loc in index.items():
        name = arch.gguf_name(hf_name)
        if name is not None:
            sources[name] = loc
    return sources


def _stream_tensors(plan: list[tuple[OutputTensor, SkeletonTensor]], reader: Prefetcher, skeleton: Skeleton,
                    lora: LoraWeights, dev: str, stream: TensorStream, stage: Any, stats: _Stats,
                    threads: int) -> None:
    total = sum(out.nbytes for out, _ in plan)
    cpu_pool = ThreadPoolExecutor(threads or os.cpu_count() or 1) if dev == "cpu" else None
    # Writing runs one tensor behind the merge/quantize loop; reading runs ahead of it (Prefetcher).
    with ThreadPoolExecutor(1) as writer:
        pending: Future[None] | None = None
        done = 0
        for out, src in plan:
            stage.check_cancel()
            if src.small_offset >= 0:
                loaded: Any = skeleton.small_bytes(src)
                hf_name = ""
            else:
                loaded = reader.take(out.name)
                hf_name = reader.location(out.name).name
            data = _convert(out, src, loaded, hf_name, skeleton, lora, dev, stats, cpu_pool)
            if pending is not None:
                pending.result()
            pending = writer.submit(_timed_write, stream, out, data, stats)
            done += out.nbytes
            stats.types[out.qtype] = stats.types.get(out.qtype, 0) + 1
            stage.fraction(done, total, out.name)
        if pending is not None:
            pending.result()
    if cpu_pool is not None:
        cpu_pool.shutdown()


def _convert(out: OutputTensor, src: SkeletonTensor, loaded: Any, hf_name: str,
             skeleton: Skeleton, lora: LoraWeights, dev: str, stats: _Stats, pool: ThreadPoolExecutor | None) -> Any:
    import numpy as np
    import torch

    started = time.monotonic()
    src_type = GGML_TYPE_NAMES[src.ggml_type]
    if src.small_offset >= 0:  # the converter's own bytes (F32/F16)
        values = np.frombuffer(loaded, dtype=np.float32 if src_type == "F32" else np.float16)
        if out.qtype == src_type:
            return values
        rows = torch.from_numpy(values.astype(np.float32).reshape(-1, src.shape[-1]))
    else:
        weight = loaded.to(dev, non_blocking=True) if dev != "cpu" else loaded
        weight = lora.merged(hf_name, weight)
        weight = arch.rotary_permute(weight, hf_name, skeleton.gguf_arch, skeleton.hparams)
        if weight.shape[0] > src.shape[0]:  # the converter drops rows past the real vocabulary (gemma3)
            weight = weight[: src.shape[0]]
        # the reference's F16 GGUF holds round(merged → f16) (or f32), which llama-quantize reads back as f32
        rows = (weight.float().to(torch.float16) if src_type == "F16" else weight.float()).float()
        rows = rows.reshape(-1, src.shape[-1])
    stats.busy["merge"] += time.monotonic() - started
    started = time.monotonic()
    if dev != "cpu" and out.qtype in gpu_quant.TORCH_TYPES:
        data = gpu_quant.quantize(out.qtype, rows.to(dev)).cpu().numpy()
    else:
        data = quantize_rows(out.qtype, rows.cpu().numpy(), pool=pool)
    stats.busy["quantize"] += time.monotonic() - started
    return data


def _timed_write(stream: TensorStream, out: OutputTensor, data: Any, stats: _Stats) -> None:
    started = time.monotonic()
    stream.write(out, data)
    stats.busy["write"] += time.monotonic() - started
