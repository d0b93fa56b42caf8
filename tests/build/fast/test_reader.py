"""The safetensors reader: tensors read ahead in order, and the page-cache warm-up before the first take."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lorag.build.fast.reader import Prefetcher, available_memory, index_file

MB = 1 << 20


@pytest.fixture
def four_tensors(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    tensors = {f"t{i}": rng.standard_normal((256, 1024)).astype(np.float32) for i in range(4)}  # 1 MB each
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path))
    return path, tensors


def _wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_warm_up_reads_what_the_readers_have_not_started(four_tensors: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, tensors = four_tensors
    index = index_file(path)
    order = [(name, index[name]) for name in sorted(tensors)]
    reader = Prefetcher(order, budget=MB, workers=1)  # the readers hold one tensor: the other three are warmed
    reader.start(warm_ahead=64 * MB)
    _wait_for(lambda: reader.warmed >= 3 * MB)
    assert reader.warmed == 3 * MB
    for name, _ in order:
        assert np.array_equal(reader.take(name).numpy(), tensors[name])
    reader.close()


def test_no_warm_up_when_asked_for_none(four_tensors: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, tensors = four_tensors
    index = index_file(path)
    order = [(name, index[name]) for name in sorted(tensors)]
    reader = Prefetcher(order, budget=MB, workers=1)
    reader.start(warm_ahead=0)
    for name, _ in order:
        assert np.array_equal(reader.take(name).numpy(), tensors[name])
    reader.close()
    assert reader.warmed == 0


def test_available_memory_reads_meminfo() -> None:
    total = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal:")).split()[1]) * 1024
    assert 0 < available_memory() <= total
