"""The GGUF tensor stream: sizes checked, padding written, and write-out started behind the writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lorag.build.fast import gguf_writer
from lorag.build.fast.gguf_writer import OutputTensor, TensorStream, start_write_out


def test_write_out_is_requested_behind_the_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(gguf_writer, "WRITE_BEHIND", 8192)
    monkeypatch.setattr(gguf_writer, "start_write_out", lambda fd, offset, length: calls.append((offset, length)))
    blocks = [np.full(5000, i, dtype=np.uint8) for i in range(6)]
    path = tmp_path / "out.bin"
    with open(path, "wb") as fh:
        fh.write(b"HEAD")
        stream = TensorStream(fh, alignment=32)
        for i, block in enumerate(blocks):
            stream.write(OutputTensor(f"t{i}", (5000,), "I8", 5000), block)
    data = path.read_bytes()
    padded = 5024  # 5000 rounded up to the alignment
    assert data[:4] == b"HEAD" and len(data) == 4 + 6 * padded
    for i in range(6):
        assert data[4 + i * padded : 4 + i * padded + 5000] == bytes([i]) * 5000
        assert data[4 + i * padded + 5000 : 4 + (i + 1) * padded] == bytes(24)
    # requested every 8 KiB or more, contiguous from the end of the header, never past what was written
    assert calls == [(4, 2 * padded), (4 + 2 * padded, 2 * padded), (4 + 4 * padded, 2 * padded)]


def test_a_wrong_size_is_refused(tmp_path: Path) -> None:
    with open(tmp_path / "out.bin", "wb") as fh:
        stream = TensorStream(fh, alignment=32)
        with pytest.raises(ValueError, match="10 bytes for a I8 tensor of 12"):
            stream.write(OutputTensor("t", (12,), "I8", 12), np.zeros(10, dtype=np.uint8))


def test_start_write_out_on_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    with open(path, "wb") as fh:
        fh.write(b"x" * 65536)
        fh.flush()
        start_write_out(fh.fileno(), 0, 65536)
        os.fsync(fh.fileno())
    assert path.read_bytes() == b"x" * 65536
