"""Single-pass build: read each base tensor once, merge its LoRA delta, quantize, append to the GGUF.

No merged checkpoint and no F16 GGUF touch the disk. Metadata, tensor names, shapes and small tensors are
derived in-process exactly as llama.cpp's converter would write them (metadata.py), or for inputs that code does
not recognise taken from the converter itself run lazily in a child process (skeleton.py), while the weights
are already being read and quantized (producer.py); per-tensor types follow llama-quantize's mixture
rules (mixture.py); on the CPU the data is quantized by ggml itself (byte-identical output), on a GPU by torch
ports of the same algorithms (gpu_quant.py).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lorag.build.fast import arch, preload
from lorag.build.fast.ggml import GGML_TYPE_NAMES, quantize_rows
from lorag.build.fast.gguf_writer import OutputTensor, TensorStream, header_bytes, quantized_kv
from lorag.build.fast.lora import FastPathUnsupported, LoraWeights, load_lora
from lorag.build.fast.metadata import write_native_skeleton
from lorag.build.fast.mixture import FTYPES, MixturePlanner, quantize_order
from lorag.build.fast.producer import Producer, StreamedTensor, plan_streamed
from lorag.build.fast.reader import Prefetcher, TensorLocation, index_model
from lorag.build.fast.skeleton import Skeleton, SkeletonJob, load_skeleton, remove_quietly, stage_model_dir
from lorag.build.fast.skeleton_cache import has_entries, lookup, skeleton_key, store
from lorag.errors import BuildError

ProgressFn = Callable[[dict[str, Any]], None]
DEVICE_READ_AHEAD = 32 << 30  # bytes read ahead into GPU memory (at most half of what is free there)


def supports_fast_path(architecture: str) -> bool:
    """True when the single-pass build handles this HF architecture (e.g. "Qwen2ForCausalLM") natively."""
    return arch.supports(architecture)


def build_gguf_single_pass(
    base_dir: Path, adapter_dir: Path | None, out_path: Path, qtype: str, chat_template: str | None,
    progress: ProgressFn | None = None, cancel: Any = None, device: str = "auto", *,
    model_name: str | None = None, dir_name: str = "merged", threads: int = 0, memory_budget: int = 3 << 30,
) -> dict[str, Any]:
    """Build ``out_path`` (GGUF, ``qtype``) from a base model and an optional LoRA adapter in one pass.

    ``model_name`` is what the reference passes as the converter's --model-name, ``dir_name`` the name of
    the merged directory it converts (both feed general.name/basename/size_label). ``memory_budget`` bounds
    the bytes read ahead plus the output waiting for the header. Raises FastPathUnsupported when the
    reference route must be used instead.
    """
    from lorag.atomic import atomic_open
    from lorag.build.progress import StageProgress

    started = time.monotonic()
    # The pages torch's import needs are read first (preload.py); the tensor reads run beside the import once those
    # reads are queued. Without a profile the reads wait for the import, whose page faults would queue behind them.
    warmed = preload.start()  # torch imported already (a second build in this process): nothing to wait for
    qtype = qtype.strip().upper()
    if qtype not in FTYPES:
        raise FastPathUnsupported(f"the fast build path does not produce {qtype}.")
    config = _config(base_dir)
    hf_arch = str((config.get("architectures") or ["?"])[0])
    if not supports_fast_path(hf_arch):
        raise FastPathUnsupported(f"the fast build path does not handle {hf_arch}.")
    stage = StageProgress(progress, "fast_build", cancel)
    index = index_model(base_dir)
    sources = _sources(index)
    gguf_arch = arch.NATIVE[hf_arch]
    reader = _reader(sources, qtype, config, gguf_arch, memory_budget)
    producer: Producer | None = None
    job: SkeletonJob | None = None
    scratch = out_path.parent / f".{out_path.name}.fast"
    try:
        preloading = "torch" if "torch" in sys.modules else "profile" if warmed is not None else "none"
        gate = warmed or threading.Event()
        reader.start(after=gate)
        dev = _pick_device(device)
        gate.set()
        reader.attach(dev)
        t_import = time.monotonic() - started
        first_build = not has_entries()
        remove_quietly(scratch)
        staged = stage_model_dir(base_dir, adapter_dir, chat_template, scratch / dir_name)
        work = scratch / "skeleton"
        # The adapter stays on the host here: the producer thread moves it to the device.
        lora = load_lora(adapter_dir) if adapter_dir is not None else LoraWeights({}, False)
        _check_adapter(lora, index)
        t_lora = time.monotonic() - started
        # On a GPU a first build derives the metadata before the producer thread starts: both are Python and
        # would share the GIL. (Tried on the device: in a child process beside the producer, the child's imports
        # crawled behind the reads; the first build came out 2-3 s further behind the cached one.) On the CPU that
        # thread mostly waits in ggml and torch, which release the GIL, and the metadata is derived alongside it.
        if gguf_arch != "gemma3" and (dev == "cpu" or not first_build):
            producer = _producer(reader, sources, qtype, config, gguf_arch, lora, dev, threads, memory_budget, None)
        from lorag.build.convert import ensure_converters

        tree = ensure_converters()
        key = skeleton_key(staged, index, {loc.name for loc in sources.values()}, model_name, tree)
        cached = lookup(key, work)
        t_key = time.monotonic() - started
        meta_source, fallback = ("cache", None) if cached else ("native", None)
        if not cached:  # gemma3: its embedding rows come from the metadata, so the producer starts after it
            # the tokenizer's arrays are large: first let the host copies read before the import reach the device
            reader.settle()
            fallback = write_native_skeleton(staged, work, model_name)
        if producer is None and gguf_arch != "gemma3" and fallback is not None:
            # llama.cpp's converter runs in a child process: compute alongside it
            producer = _producer(reader, sources, qtype, config, gguf_arch, lora, dev, threads, memory_budget, None)
        if fallback is not None:
            meta_source, job = "converter", SkeletonJob(staged, work, tree, model_name)
        skeleton = load_skeleton(work) if job is None else job.result()
        if not cached:
            store(key, work)
        t_meta = time.monotonic() - started
        if producer is None:
            rows = {t.name: t.shape[0] for t in skeleton.tensors if t.name in sources}
            producer = _producer(reader, sources, qtype, config, gguf_arch, lora, dev, threads, memory_budget, rows)
        plan = _plan(skeleton, qtype, producer.plan)
        header = header_bytes(quantized_kv([(k, raw) for k, raw, _, _ in skeleton.kv], FTYPES[qtype][1]),
                              plan, skeleton.alignment)
        t_write = 0.0
        with atomic_open(out_path, "wb") as fh:
            fh.write(header)
            stream = TensorStream(fh, skeleton.alignment)
            done, total = 0, sum(t.nbytes for t in plan)
            for out in plan:
                stage.check_cancel()
                data = producer.take(out.name) if out.name in sources else _small(skeleton, out)
                t0 = time.monotonic()
                stream.write(out, data)
                t_write += time.monotonic() - t0
                done += out.nbytes
                stage.fraction(done, total, out.name)
    finally:
        if job is not None:
            job.kill()
        if producer is not None:
            producer.close()
        reader.close()
        remove_quietly(scratch)
    total_s = time.monotonic() - started
    if not preload.is_current():
        preload.record()  # torch and the GPU libraries are loaded now: the next build reads beside the import
    types: dict[str, int] = {}
    for out in plan:
        types[out.qtype] = types.get(out.qtype, 0) + 1
    busy = {"read": reader.seconds, **producer.busy, "write": t_write}
    return {
        "gguf": str(out_path), "quantization": qtype, "device": dev, "size_bytes": out_path.stat().st_size,
        "seconds": round(total_s, 3),
        "stages": {**({"preload_done": round(preload.done_at - started, 3)} if preloading == "profile" else {}),
                   "reads_start": round(reader.started_at - started, 3), "torch": round(t_import, 3),
                   "adapter": round(t_lora, 3),
                   "key": round(t_key, 3),
                   "metadata": round(t_meta, 3),
                   "reads_done": round(reader.done_at - started, 3), "total": round(total_s, 3)},
        "preload": preloading, "metadata_cached": cached, "metadata_source": meta_source,
        "metadata_fallback": fallback,
        "bytes_read": sum(loc.nbytes for loc in sources.values()), "tensors": len(plan), "types": types,
        "profile": {k: round(v, 3) for k, v in busy.items()},
        "quantize_by_type": {t: {k: round(v, 3) for k, v in e.items()} for t, e in producer.by_type.items()},
    }


def _config(base_dir: Path) -> dict[str, Any]:
    try:
        config: dict[str, Any] = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read {base_dir / 'config.json'}: {exc}", "Pass the base model with --base.") from exc
    if config.get("quantization_config"):
        raise FastPathUnsupported("the base model is quantized; the fast path needs 16-bit weights.")
    return config


def _pick_device(device: str) -> str:
    """The device to build on; imports torch (the reads may already be running)."""
    try:
        import torch
    except ImportError:
        return "cpu" if device == "auto" else device
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _sources(index: dict[str, TensorLocation]) -> dict[str, TensorLocation]:
    """GGUF name → safetensors location for every tensor the fast path streams."""
    sources = {}
    for hf_name, loc in index.items():
        name = arch.gguf_name(hf_name)
        if name is not None:
            sources[name] = loc
    return sources


def _check_adapter(lora: LoraWeights, index: dict[str, TensorLocation]) -> None:
    unknown = [k for k in lora.pairs if k not in index]
    if unknown:
        raise BuildError(f"the adapter changes weights the base model does not have ({', '.join(unknown[:4])}).",
                         "The adapter was trained on a different architecture; pass the right --base.")


def _streamed(sources: dict[str, TensorLocation], qtype: str, config: dict[str, Any], gguf_arch: str,
              rows: dict[str, int] | None) -> list[StreamedTensor]:
    text = config.get("text_config", config)
    n_layer = int(text["num_hidden_layers"])
    return plan_streamed(sources, qtype, n_layer, arch.model_type_is_70b(gguf_arch, n_layer, text), rows)


def _reader(sources: dict[str, TensorLocation], qtype: str, config: dict[str, Any], gguf_arch: str,
            budget: int) -> Prefetcher:
    """The reads in the producer's order (rows do not change what is read); a third of the budget ahead on the
    host, up to DEVICE_READ_AHEAD on a GPU, where the copies wait in device memory. Until torch has imported
    (nothing is computed or waiting for the writer yet) the whole budget may be read ahead."""
    order = [(t.name, t.source) for t in _streamed(sources, qtype, config, gguf_arch, None)]
    return Prefetcher(order, budget // 3, device=None, device_budget=DEVICE_READ_AHEAD, early_budget=budget)


def _producer(reader: Prefetcher, sources: dict[str, TensorLocation], qtype: str, config: dict[str, Any],
              gguf_arch: str, lora: LoraWeights, dev: str, threads: int, budget: int,
              rows: dict[str, int] | None) -> Producer:
    plan = _streamed(sources, qtype, config, gguf_arch, rows)
    # Two thirds of the budget for finished output waiting on the writer.
    producer = Producer(plan, lora, dev, gguf_arch, config.get("text_config", config), threads, budget * 2 // 3,
                        reader)
    producer.start()
    return producer


def _plan(skeleton: Skeleton, qtype: str, streamed: list[StreamedTensor]) -> list[OutputTensor]:
    """Output tensors in llama-quantize's order; the streamed ones must be exactly what the converter lists."""
    by_name = {t.name: t for t in skeleton.tensors}
    names = quantize_order(list(by_name))
    planned = {t.name: t for t in streamed}
    expected = [n for n in names if by_name[n].small_offset < 0]
    if expected != [t.name for t in streamed]:
        raise FastPathUnsupported(f"the converter writes other tensors than the fast path: {expected[:3]}...")
    n_layer = int(skeleton.value(f"{skeleton.gguf_arch}.block_count", 0))
    planner = MixturePlanner(qtype, n_layer, arch.model_type_is_70b(skeleton.gguf_arch, n_layer, skeleton.hparams),
                             names)
    plan = []
    for name in names:
        src = by_name[name]
        out_type = planner.choose(name, src.shape, GGML_TYPE_NAMES[src.ggml_type])
        if name in planned:
            mine = planned[name]
            if (mine.shape, mine.qtype, "F16") != (src.shape, out_type, GGML_TYPE_NAMES[src.ggml_type]):
                raise FastPathUnsupported(f"{name}: the converter writes {src.shape} "
                                          f"{GGML_TYPE_NAMES[src.ggml_type]}, the fast path planned {mine.shape}.")
            plan.append(OutputTensor(name, src.shape, out_type, mine.nbytes))
        else:
            from lorag.build.fast.ggml import tensor_nbytes

            plan.append(OutputTensor(name, src.shape, out_type, tensor_nbytes(out_type, src.shape)))
    return plan


def _small(skeleton: Skeleton, out: OutputTensor) -> Any:
    """A small tensor's bytes: the converter's own, requantized only if the mixture says so."""
    import numpy as np

    src = next(t for t in skeleton.tensors if t.name == out.name)
    src_type = GGML_TYPE_NAMES[src.ggml_type]
    raw = skeleton.small_bytes(src)
    if out.qtype == src_type:
        return raw
    values = np.frombuffer(raw, dtype=np.float32 if src_type == "F32" else np.float16).astype(np.float32)
    return quantize_rows(out.qtype, values.reshape(-1, src.shape[-1]))


def record_import_pages() -> Path | None:
    """Import what a build imports (torch; where there is a GPU, CUDA and the quantize kernels, compiled once into
    Triton's cache: gpu_quant.warm_up), then record the preload profile (its path)."""
    import torch

    from lorag.build.fast import gpu_quant

    # a warm-up that fails (no usable GPU after all, a kernel that does not compile) only leaves the compile to the
    # first build, which then reports the failure itself
    with contextlib.suppress(Exception):
        if torch.cuda.is_available():
            gpu_quant.warm_up("cuda")
    return preload.record()
