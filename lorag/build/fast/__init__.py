"""Fast single-pass GGUF build: merge, quantize and write in one streaming pass (CPU via ggml, or GPU).

The names below load on first use, so ``lorag.build.fast.preload`` can be imported (and started) before the rest of
the build's modules and their numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.build.fast.lora import FastPathUnsupported
    from lorag.build.fast.single_pass import build_gguf_single_pass, supports_fast_path

__all__ = ["FastPathUnsupported", "build_gguf_single_pass", "supports_fast_path"]


def __getattr__(name: str) -> Any:
    if name == "FastPathUnsupported":
        from lorag.build.fast.lora import FastPathUnsupported

        return FastPathUnsupported
    if name in ("build_gguf_single_pass", "supports_fast_path"):
        from lorag.build.fast import single_pass

        return getattr(single_pass, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
