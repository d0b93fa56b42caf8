"""What this machine (or the one being planned for) has: GPUs with total/free memory, RAM, CPU cores.

Usage::

    hw = probe_hardware()                                   # this machine
    hw = pretend_hardware(parse_size("36GB"), parse_size("64GB"))  # plan for another machine
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lorag.errors import LoragError

_UNITS = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9, "T": 10**12,
          "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


@dataclass
class GPU:
    """One GPU's memory in bytes."""

    index: int
    name: str
    total_bytes: int
    free_bytes: int


@dataclass
class Hardware:
    """Memory and cores available for running a model."""

    gpus: list[GPU] = field(default_factory=list)
    ram_total: int = 0
    ram_available: int = 0
    cpu_cores: int = 1
    pretend: bool = False

    @property
    def gpu_free(self) -> int:
        return sum(g.free_bytes for g in self.gpus)

    @property
    def gpu_total(self) -> int:
        return sum(g.total_bytes for g in self.gpus)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"gpu_free": self.gpu_free, "gpu_total": self.gpu_total}


def parse_size(text: str) -> int:
    """Parse "36GB", "24GiB", "512MB", "1.5G" into bytes (GB = 10^9, GiB = 2^30)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).upper() if m else ""
    if not m or unit not in _UNITS:
        raise LoragError(f"cannot read the size {text!r}.", "Write it like 36GB, 24GiB or 512MB.")
    return int(float(m.group(1)) * _UNITS[unit])


def format_size(n: int | float) -> str:
    """Bytes as a short decimal size: "20.9 GB", "512 MB"."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{int(n)} B"


def probe_gpus() -> list[GPU]:
    """GPUs via nvidia-ml-py, else torch.cuda; an empty list when neither finds one."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            gpus = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
                name = pynvml.nvmlDeviceGetName(handle)
                gpus.append(GPU(i, name.decode() if isinstance(name, bytes) else str(name), int(mem.total),
                                int(mem.free)))
            return gpus
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML library or no driver: try torch next
        pass
    if not _gpu_driver_present():
        return []  # importing torch only to learn there is no GPU costs seconds
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        out = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            out.append(GPU(i, torch.cuda.get_device_name(i), int(total), int(free)))
        return out
    except Exception:  # a broken CUDA install means "no usable GPU" for planning
        return []


def _gpu_driver_present() -> bool:
    """Whether a CUDA (NVIDIA) or ROCm (AMD) kernel driver is loaded, which torch would need to see a GPU."""
    return any(Path(p).exists() for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd"))


def probe_hardware() -> Hardware:
    """Probe this machine's GPUs, RAM and CPU cores."""
    import psutil

    vm = psutil.virtual_memory()
    return Hardware(gpus=probe_gpus(), ram_total=int(vm.total), ram_available=int(vm.available), cpu_cores=_cores())


def _cores() -> int:
    import psutil

    return int(psutil.cpu_count(logical=False) or os.cpu_count() or 1)


def pretend_hardware(gpu_memory: int | None = None, ram: int | None = None, base: Hardware | None = None) -> Hardware:
    """Hardware for planning another machine: the given GPU memory (0 = no GPU) and RAM, all of it free."""
    if base is None:  # only probe what the caller did not give (probing GPUs may import torch)
        import psutil

        vm = psutil.virtual_memory()
        base = Hardware(gpus=probe_gpus() if gpu_memory is None else [], ram_total=int(vm.total),
                        ram_available=int(vm.available), cpu_cores=_cores())
    hw = base
    gpus = hw.gpus
    if gpu_memory is not None:
        gpus = [GPU(0, "planned GPU", gpu_memory, gpu_memory)] if gpu_memory > 0 else []
    ram_total = ram if ram is not None else hw.ram_total
    ram_free = ram if ram is not None else hw.ram_available
    return Hardware(gpus=gpus, ram_total=ram_total, ram_available=ram_free, cpu_cores=hw.cpu_cores, pretend=True)
