"""The streaming half of the fast build: read → merge LoRA → f16 rounding → quantize, on its own thread.

The reads start first (reader.py); this thread starts once the metadata is known, so the GIL is not shared
with the metadata work. Its output waits in a bounded in-memory queue until the writer catches up (or, for
the converter fallback, until the header is known).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lorag.build.fast import arch, gpu_quant
from lorag.build.fast.ggml import quantize_rows, tensor_nbytes
from lorag.build.fast.lora import LoraWeights
from lorag.build.fast.mixture import MixturePlanner, quantize_order
from lorag.build.fast.reader import Prefetcher, TensorLocation


@dataclass(frozen=True)
class StreamedTensor:
    """One tensor the fast path computes itself: source, output type and output shape (numpy order)."""

    name: str
    source: TensorLocation
    qtype: str
    shape: tuple[int, ...]
    nbytes: int


def plan_streamed(sources: dict[str, TensorLocation], qtype: str, n_layer: int, is_70b: bool,
                  rows: dict[str, int] | None = None) -> list[StreamedTensor]:
    """Streamed tensors in llama-quantize's order with their output types (the F16 GGUF holds them as F16)."""
    names = quantize_order(list(sources))
    planner = MixturePlanner(qtype, n_layer, is_70b, names)
    plan = []
    for name in names:
        loc = sources[name]
        shape = ((rows or {}).get(name, loc.shape[0]), *loc.shape[1:])
        out_type = planner.choose(name, shape, "F16")
        plan.append(StreamedTensor(name, loc, out_type, shape, tensor_nbytes(out_type, shape)))
    return plan


class Producer:
    """Computes each streamed tensor's output bytes in order on a thread, holding at most ``budget`` bytes."""

    def __init__(self, plan: list[StreamedTensor], lora: LoraWeights, device: str, gguf_arch: str,
                 hparams: dict[str, Any], threads: int, budget: int, reader: Prefetcher) -> None:
        self.plan, self.lora, self.device = plan, lora, device
        self.gguf_arch, self.hparams, self.budget = gguf_arch, hparams, budget
        self.reader = reader  # started by the caller, usually well before this
        self.pool = ThreadPoolExecutor(threads or os.cpu_count() or 1) if device == "cpu" else None
        self.busy = {"wait_for_read": 0.0, "merge": 0.0, "quantize": 0.0, "wait_for_writer": 0.0}
        self.by_type: dict[str, dict[str, float]] = {}  # quantize seconds, weights and tensors per output type
        self._ready: deque[tuple[str, Any]] = deque()
        self._held = 0
        self._error: BaseException | None = None
        self._stop = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="lorag-fast-build", daemon=True)

    def start(self) -> None:
        """Start computing (the reader is started by the caller)."""
        self._thread.start()

    def take(self, name: str) -> Any:
        """The next tensor's bytes (must be ``name``), waiting until they are computed."""
        with self._cond:
            while not self._ready and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            got, data = self._ready.popleft()
            self._held -= data.nbytes
            self._cond.notify_all()
        if got != name:
            raise RuntimeError(f"fast build out of order: expected {name}, computed {got}")
        return data

    def close(self) -> None:
        """Stop the thread and the readers (after an error or a cancel, too)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        self.reader.close()
        if self.pool is not None:
            self.pool.shutdown()

    def _run(self) -> None:
        try:
            self.lora = self.lora.to(self.device)
            for item in self.plan:
                started = time.monotonic()
                weight = self.reader.take(item.name)
                self.busy["wait_for_read"] += time.monotonic() - started
                data = self._compute(item, weight)
                started = time.monotonic()
                with self._cond:
                    while self._ready and self._held + data.nbytes > self.budget and not self._stop:
                        self._cond.wait()
                    if self._stop:
                        return
                    self._ready.append((item.name, data))
                    self._held += data.nbytes
                    self._cond.notify_all()
                self.busy["wait_for_writer"] += time.monotonic() - started
        except BaseException as exc:  # handed to the writer thread
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def _compute(self, item: StreamedTensor, weight: Any) -> Any:
        import torch

        started = time.monotonic()
        hf_name = item.source.name
        if self.device != "cpu":
            # copied on a reader's stream: keep its memory from being reused while this stream still reads it
            weight.record_stream(torch.cuda.current_stream())
        weight = self.lora.merged(hf_name, weight)
        weight = arch.rotary_permute(weight, hf_name, self.gguf_arch, self.hparams)
        if weight.shape[0] > item.shape[0]:  # the converter drops rows past the real vocabulary (gemma3)
            weight = weight[: item.shape[0]]
        # The reference's F16 GGUF holds round(merged → f16), which llama-quantize reads back as f32.
        # (bf16 → f16 directly rounds exactly like bf16 → f32 → f16: every bf16 value is exact in f32.)
        rows = weight.to(torch.float16).float().reshape(-1, item.shape[-1])
        self.busy["merge"] += time.monotonic() - started
        started = time.monotonic()
        if self.device != "cpu" and item.qtype in gpu_quant.TORCH_TYPES:
            data = _to_host(gpu_quant.quantize(item.qtype, rows))
        else:
            data = quantize_rows(item.qtype, rows.cpu().numpy(), pool=self.pool)
        seconds = time.monotonic() - started
        self.busy["quantize"] += seconds
        entry = self.by_type.setdefault(item.qtype, {"seconds": 0.0, "weights": 0, "tensors": 0})
        entry["seconds"] += seconds
        entry["weights"] += rows.numel()
        entry["tensors"] += 1
        if data.nbytes != item.nbytes:
            raise RuntimeError(f"{item.name}: {data.nbytes} bytes computed, {item.nbytes} expected")
        return data


def _to_host(data: Any) -> Any:
    """The device bytes as a numpy array, copied through page-locked memory: a copy into pageable memory runs
    at ~1-2 GB/s (30 ms for an ffn tensor's Q4_K bytes on an H200), into pinned memory ~40x faster."""
    import torch

    host = torch.empty(data.numel(), dtype=torch.uint8, pin_memory=True)
    host.copy_(data)
    return host.numpy()

