"""A quick check of the GPU single pass before the long run: tiny Qwen2 + LoRA, Q4_K_S and Q4_K_M on CUDA.

First the fused Triton scale search against the torch one (exit status 3 when they disagree: the caller then
sets LORAG_GPU_QUANT=torch). Prints each build's stats (metadata source, profile, per-type tensor counts);
exits non-zero on any failure.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def fused_agrees() -> bool:
    """The Triton scale search against the torch one on the GPU (near-ties only may differ)."""
    import os

    import torch

    from lorag.build.fast import gpu_quant

    x = (torch.randn(256, 4096, device="cuda") * 0.02).half().float()
    ok = True
    for qtype in ("Q4_K", "Q5_K"):
        os.environ["LORAG_GPU_QUANT"] = "torch"
        plain = gpu_quant.quantize(qtype, x).cpu()
        os.environ["LORAG_GPU_QUANT"] = "auto"
        try:
            fused = gpu_quant.quantize(qtype, x).cpu()
        except Exception as exc:  # reported, then the torch search is used
            print(qtype, "fused kernel failed:", repr(exc)[:500], flush=True)
            return False
        share = (plain != fused).float().mean().item()
        print(qtype, f"fused vs torch: {100 * share:.3f} % of bytes differ", flush=True)
        ok = ok and share < 0.01
    return ok


def main() -> None:
    import os

    fused_ok = fused_agrees()
    if not fused_ok:
        os.environ["LORAG_GPU_QUANT"] = "torch"
    from lorag.build.fast import build_gguf_single_pass
    from tests.helpers.tiny import make_tiny_adapter, make_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = make_tiny_model(root / "tiny-qwen2")
        adapter = make_tiny_adapter(base, root / "lora")
        for qtype in ("Q4_K_S", "Q4_K_M"):
            stats = build_gguf_single_pass(base, adapter, root / f"{qtype}.gguf", qtype, None, device="cuda")
            print(qtype, json.dumps({k: stats[k] for k in ("seconds", "metadata_source", "types", "profile")}),
                  flush=True)
            assert stats["metadata_source"] in ("native", "cache"), stats.get("metadata_fallback")
    if not fused_ok:
        sys.exit(3)  # the caller runs on with LORAG_GPU_QUANT=torch


if __name__ == "__main__":
    main()
