"""Read safetensors tensors with plain file reads (the GIL is released while the disk works), ahead of use."""

from __future__ import annotations

import json
import os
import struct
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}


@dataclass(frozen=True)
class TensorLocation:
    """Where one tensor's bytes live in a safetensors file."""

    path: Path
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    nbytes: int


def index_file(path: Path) -> dict[str, TensorLocation]:
    """Parse a safetensors header: tensor name → location."""
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    base = 8 + size
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = TensorLocation(path, name, info["dtype"], tuple(info["shape"]), base + begin, end - begin)
    return out


def index_model(base_dir: Path) -> dict[str, TensorLocation]:
    """All tensors of a model directory (single file or sharded with an index)."""
    index = base_dir / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())) if index.is_file() \
        else ["model.safetensors"]
    out: dict[str, TensorLocation] = {}
    for file in files:
        out.update(index_file(base_dir / file))
    return out


def read_raw(loc: TensorLocation) -> Any:
    """One tensor's bytes as a fresh numpy uint8 array (no torch needed: reads can start before it imports)."""
    import numpy as np

    if loc.dtype not in _DTYPES:
        raise ValueError(f"{loc.name}: unsupported dtype {loc.dtype}")
    raw = np.empty(loc.nbytes, dtype=np.uint8)
    with open(loc.path, "rb", buffering=0) as fh:
        fh.seek(loc.start)
        view = memoryview(raw.data)
        done = 0
        while done < loc.nbytes:
            got = fh.readinto(view[done:])
            if not got:
                raise OSError(f"{loc.path} ended inside tensor {loc.name}")
            done += got
    return raw


def as_tensor(raw: Any, loc: TensorLocation) -> Any:
    """The CPU torch tensor over ``raw`` (read_raw's array for ``loc``), no copy."""
    import torch

    return torch.from_numpy(raw).view(getattr(torch, _DTYPES[loc.dtype])).reshape(loc.shape)


def read_tensor(loc: TensorLocation) -> Any:
    """Load one tensor into a fresh CPU torch tensor."""
    return as_tensor(read_raw(loc), loc)


class Prefetcher:
    """Loads tensors in a fixed order on worker threads, keeping at most ``budget`` bytes loaded but unused.

    ``device=None``: the device is not known yet (torch is still importing). Reads then go into plain host arrays,
    up to ``early_budget`` bytes, until ``attach(device)``; a tensor read that early becomes a torch tensor (and
    moves to the device) when it is taken.
    """

    def __init__(self, order: list[tuple[str, TensorLocation]], budget: int, workers: int = 3,
                 device: str | None = "cpu", device_budget: int = 0, early_budget: int | None = None) -> None:
        self._device = device
        # on a GPU the copies wait in device memory (the host copy is freed once copied): once the first copy
        # has started CUDA, the read-ahead grows to this (at most half the free device memory)
        self._device_budget = device_budget if device != "cpu" else 0
        self._order = order
        self._where = dict(order)
        self._late_budget = budget
        self._budget = budget if device is not None else max(budget, early_budget or budget)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="lorag-read")
        self._futures: dict[str, Future[Any]] = {}
        self._next = 0
        self._held = 0
        self._lock = threading.Lock()
        self._after: threading.Event | None = None
        self._early: list[Future[Any]] = []  # the moves to the device of what was read before attach()
        self._closed = False
        self.seconds = 0.0
        self.started_at = 0.0  # time.monotonic() when the first read began
        self.done_at = 0.0  # time.monotonic() when the last read so far finished

    def start(self, after: threading.Event | None = None) -> None:
        """Begin reading (call early: reads overlap whatever the caller does next), once ``after`` is set."""
        self._after = after
        self._fill()
        if self._device is None and hasattr(os, "posix_fadvise"):
            threading.Thread(target=self._read_ahead_while_early, name="lorag-read-ahead", daemon=True).start()

    def _read_ahead_while_early(self) -> None:
        """Keep the disk busy while the early budget is full and the device is not known yet.

        Torch's import can outlast the early reads by a second or more; the disk would idle meanwhile. The next
        tensors are handed to the kernel as read-ahead instead (posix_fadvise WILLNEED: into the page cache, not
        this process's memory, and dropped again under memory pressure), up to another early budget, in small
        pieces so it stops as soon as ``attach`` runs; their reads then come from memory.
        """
        if self._after is not None:
            self._after.wait()
        with self._lock:
            pending, ahead, cap = list(self._futures.values()), self._next, self._budget
        wait(pending)
        advised = 0
        try:
            for _, loc in self._order[ahead:]:
                end = loc.start + loc.nbytes
                with open(loc.path, "rb", buffering=0) as fh:
                    for offset in range(loc.start, end, _ADVICE_PIECE):
                        if self._device is not None or self._closed or advised >= cap:
                            return
                        length = min(_ADVICE_PIECE, end - offset)
                        os.posix_fadvise(fh.fileno(), offset, length, os.POSIX_FADV_WILLNEED)
                        advised += length
        except OSError:
            return  # advice refused or the file gone: the reads themselves will say what is wrong

    def attach(self, device: str) -> None:
        """The device is known (torch has imported): reads from now on become tensors there as they finish."""
        with self._lock:
            self._device = device
            if device == "cpu":
                self._device_budget = 0
            else:  # what was read already moves to the device on the workers, not on the taker's thread
                for key, future in list(self._futures.items()):
                    self._futures[key] = self._pool.submit(self._moved, future, self._where[key])
                self._early = list(self._futures.values())
            self._budget = self._late_budget
        self._fill()

    def settle(self) -> None:
        """Wait until what was read before ``attach`` is on the device and its host memory freed (call before
        allocating much on the host; errors surface in ``take``)."""
        wait(self._early)
        self._early = []

    def location(self, key: str) -> TensorLocation:
        """Where the tensor read for ``key`` comes from."""
        return self._where[key]

    def take(self, key: str) -> Any:
        """The tensor read for ``key`` (keys are taken in order), waiting for its read if needed."""
        future = self._futures.pop(key)
        value, seconds = future.result()
        loc = self._where[key]
        if not hasattr(value, "element_size"):  # read before attach(): still a host array
            value = self._finish(as_tensor(value, loc))
        with self._lock:
            self._held -= loc.nbytes
            self.seconds += seconds
        self._fill()
        return value

    def close(self) -> None:
        """Stop reading; pending reads are dropped."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _fill(self) -> None:
        with self._lock:
            while self._next < len(self._order):
                key, loc = self._order[self._next]
                if self._futures and self._held + loc.nbytes > self._budget:
                    break
                self._futures[key] = self._pool.submit(self._timed_read, loc)
                self._held += loc.nbytes
                self._next += 1

    def _timed_read(self, loc: TensorLocation) -> tuple[Any, float]:
        import time

        if self._after is not None:
            self._after.wait()
        started = time.monotonic()
        if not self.started_at:
            self.started_at = started
        value = read_raw(loc)
        if self._device is not None:
            value = self._finish(as_tensor(value, loc))
        self.done_at = max(self.done_at, time.monotonic())
        return value, time.monotonic() - started

    def _moved(self, read: Future[Any], loc: TensorLocation) -> tuple[Any, float]:
        # queued after every read submitted before it (the pool is first in, first out): never waits on itself
        value, seconds = read.result()
        if not hasattr(value, "element_size"):
            value = self._finish(as_tensor(value, loc))
        return value, seconds

    def _finish(self, tensor: Any) -> Any:
        if self._device is None or self._device == "cpu":
            return tensor
        tensor = _to_device(tensor, self._device)
        if self._device_budget:
            self._widen()
        return tensor

    def _widen(self) -> None:
        import torch

        assert self._device is not None
        free, _ = torch.cuda.mem_get_info(torch.device(self._device))
        with self._lock:
            self._budget = max(self._budget, min(self._device_budget, free // 2))
            self._device_budget = 0
        self._fill()


_ADVICE_PIECE = 32 << 20  # bytes per read-ahead request while the device is not known
_streams = threading.local()


def _to_device(tensor: Any, device: str) -> Any:
    """Copy on this reader thread's own CUDA stream, so host→device copies overlap the GPU's merge/quantize work
    (the default stream would queue them behind it); the host copy is freed as soon as it is on the device."""
    import torch

    stream = getattr(_streams, "stream", None)
    if stream is None:
        stream = _streams.stream = torch.cuda.Stream(device=device)
    with torch.cuda.stream(stream):
        moved = tensor.to(device, non_blocking=True)
    stream.synchronize()
    return moved
