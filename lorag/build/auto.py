"""The build as the generator sees it: a plain callable, so serving code never imports the build pipeline.

Usage::

    gen = load_generator(config, build=build_for_generator)   # llm.auto_quantize builds through this
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lorag.build.pipeline import run_build
from lorag.build.request import BuildRequest

if TYPE_CHECKING:
    from lorag.config import Config


def build_for_generator(config: Config, adapter: Path, base: Path | None,
                        quantization: str) -> tuple[Path, Path | None]:
    """Build ``adapter`` (on ``base``) at ``quantization`` in the configured build mode; return (GGUF, GGUF LoRA)."""
    result = run_build(config, BuildRequest(lora_path=adapter, base=base, quantization=quantization,
                                            mode=config.settings.build.mode))
    return result.gguf, result.adapter_gguf
