"""Per-tensor error of the torch quantizers (GPU) against ggml's own (CPU, all cores), with their speeds.

For each type the fast path quantizes on the GPU (Q4_K, Q5_K, Q6_K, Q8_0) and each tensor shape of a
Qwen2.5-7B layer, random bf16 weights with heavy tails (Student-t, per-row scales) are rounded to f16 as the
reference F16 GGUF holds them, quantized both ways (the GPU path also with LORAG_GPU_QUANT=torch, the
unfused torch search) and dequantized: RMSE vs the f16 values, the share of bytes
that differ, and weights per second. Prints a table; --json-out writes the rows.

    python bench/device/gpu_quant_error.py [--rows 2048] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SHAPES = {"attn_q (3584 cols)": 3584, "ffn_down (18944 cols)": 18944}
TYPES = tuple(os.environ.get("GPU_QUANT_TYPES", "Q4_K,Q5_K,Q6_K,Q8_0").split(","))


def weights(rows: int, cols: int, seed: int) -> Any:
    """bf16-representable heavy-tailed weights, as f16 values in float32 (what llama-quantize reads)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # StudentT samples from the global generator: the same weights every run
    t = torch.distributions.StudentT(4.0).sample((rows, cols)) if seed else torch.randn(rows, cols, generator=gen)
    scale = torch.rand(rows, 1, generator=gen) * 0.03 + 0.005
    return (t * scale).to(torch.bfloat16).to(torch.float16).float()


def measure(qtype: str, x: Any, dequantize: Any, qtypes: Any) -> dict[str, Any]:
    import numpy as np
    import torch

    from lorag.build.fast import gpu_quant
    from lorag.build.fast.ggml import quantize_rows

    host = x.numpy()
    started = time.monotonic()
    ggml = quantize_rows(qtype, host, threads=os.cpu_count() or 1)
    t_ggml = time.monotonic() - started
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = x.to(device)

    def timed(engine: str) -> tuple[Any, float]:
        os.environ["LORAG_GPU_QUANT"] = engine
        gpu_quant.quantize(qtype, dev[:256])  # warm the kernels
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.monotonic()
        out = gpu_quant.quantize(qtype, dev).cpu().numpy()
        return out, time.monotonic() - started

    plain, t_torch = timed("torch")
    ours, t_gpu = timed("auto")  # the fused Triton search where it applies (Q4_K, Q5_K on CUDA)
    gtype = getattr(qtypes, qtype)

    def rmse(data: Any) -> float:
        back = dequantize(data, gtype).reshape(host.shape)
        return float(np.sqrt(((back - host) ** 2).mean()))

    return {"type": qtype, "rmse_ggml": rmse(ggml), "rmse_gpu": rmse(ours), "rmse_torch": rmse(plain),
            "torch_Mw_s": x.numel() / t_torch / 1e6,
            "bytes_differ": float((ours != ggml).mean()), "ggml_Mw_s": x.numel() / t_ggml / 1e6,
            "gpu_Mw_s": x.numel() / t_gpu / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    from lorag.build.convert import ensure_converters

    sys.path.insert(0, str(ensure_converters() / "gguf-py"))
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    rows = []
    print(f"{'tensor':<24}{'type':>6}{'rmse ggml':>13}{'rmse gpu':>13}{'gpu/ggml':>10}{'bytes differ':>14}"
          f"{'ggml Mw/s':>11}{'gpu Mw/s':>10}{'torch/ggml':>11}{'torch Mw/s':>11}")
    for seed, (label, cols) in enumerate(SHAPES.items()):
        x = weights(args.rows, cols, seed)
        for qtype in TYPES:
            r = {"tensor": label, **measure(qtype, x, dequantize, GGMLQuantizationType)}
            rows.append(r)
            print(f"{label:<24}{qtype:>6}{r['rmse_ggml']:13.7g}{r['rmse_gpu']:13.7g}"
                  f"{r['rmse_gpu'] / r['rmse_ggml']:10.5f}{100 * r['bytes_differ']:13.3f}%"
                  f"{r['ggml_Mw_s']:11.0f}{r['gpu_Mw_s']:10.0f}{r['rmse_torch'] / r['rmse_ggml']:11.5f}"
                  f"{r['torch_Mw_s']:11.0f}", flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
