"""Fast single-pass GGUF build: merge, quantize and write in one streaming pass (CPU via ggml, or GPU)."""

from lorag.build.fast.lora import FastPathUnsupported
from lorag.build.fast.single_pass import build_gguf_single_pass, supports_fast_path

__all__ = ["FastPathUnsupported", "build_gguf_single_pass", "supports_fast_path"]
