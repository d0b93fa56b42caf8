"""Quantize a GGUF with llama.cpp's own quantizer, in a worker thread so progress can be reported."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from lorag.build.progress import StageProgress
from lorag.errors import BuildError

# llama.cpp's LLAMA_FTYPE_MOSTLY_* values (checked against llama_cpp's constants in tests).
FTYPES: dict[str, int] = {"F16": 1, "Q8_0": 7, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18}
# Published average bits per weight, used to predict sizes for the disk preflight and the progress bar.
BITS_PER_WEIGHT: dict[str, float] = {
    "F16": 16.0, "Q8_0": 8.5, "Q6_K": 6.56, "Q5_K_M": 5.7, "Q4_K_M": 4.89, "Q4_K_S": 4.58,
}


def normalize_qtype(qtype: str) -> str:
    """Return the canonical quantization name, or raise BuildError listing the valid ones."""
    canon = qtype.strip().upper()
    if canon not in FTYPES:
        valid = ", ".join(FTYPES)
        raise BuildError(f"unknown quantization type {qtype!r}.", f"Choose one of: {valid}.")
    return canon


def predicted_size(f16_bytes: int, qtype: str) -> int:
    """Rough size of the quantized file given the F16 GGUF size."""
    return int(f16_bytes * BITS_PER_WEIGHT[normalize_qtype(qtype)] / 16.0)


def quantize_f16(f16: Path, out_dir: Path, qtype: str, progress: StageProgress, stem: str = "model") -> Path:
    """Quantize the F16 GGUF into ``out_dir/<stem>-<qtype>.gguf`` and return it (F16 itself needs no work)."""
    if qtype == "F16":
        progress.update(100, message="F16 requested: no quantization")
        return f16
    out = out_dir / f"{stem}-{qtype}.gguf"
    quantize_gguf(f16, out, qtype, progress)
    return out


def quantize_gguf(src: Path, dst: Path, qtype: str, progress: StageProgress, threads: int = 0) -> None:
    """Quantize ``src`` (F16 GGUF) into ``dst``; the C call runs in a thread while we poll the file size."""
    ftype = FTYPES[normalize_qtype(qtype)]
    expected = predicted_size(src.stat().st_size, qtype)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["rc"] = _call_quantizer(src, dst, ftype, threads or (os.cpu_count() or 1))
        except BaseException as exc:  # reported in the calling thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="lorag-quantize", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
        done = dst.stat().st_size if dst.exists() else 0
        # The C call cannot be interrupted; a cancel is honoured as soon as it returns.
        if progress.cancel is None or not progress.cancel.is_set():
            progress.update(min(99.0, 100.0 * done / max(expected, 1)), done, expected, f"quantizing to {qtype}")
    if "error" in outcome:
        error: BaseException = outcome["error"]
        raise BuildError(f"quantizing to {qtype} failed: {error}") from error
    if outcome.get("rc") != 0 or not dst.exists():
        raise BuildError(f"llama.cpp's quantizer failed (code {outcome.get('rc')}) on {src.name}.",
                         "Check free disk space and that the F16 GGUF is valid.")
    size = dst.stat().st_size
    progress.update(100.0, size, size, f"quantized to {qtype}")


def _call_quantizer(src: Path, dst: Path, ftype: int, threads: int) -> int:
    import ctypes

    import llama_cpp

    from lorag.generate.llamacpp import quiet_llama_logs

    quiet_llama_logs()
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = threads
    params.ftype = ftype
    return int(llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)))

