# ruff: noqa: B023  (each lambda is timed within its own iteration)
"""Where a Q4_K / Q6_K tensor's GPU quantize time goes: preparation, scale search, packing, device→host copy.

Usage (on the device): python quant_phases.py
One ffn-sized (18944 x 3584) and one attn-sized (3584 x 3584) random bf16 tensor, each phase timed with
torch.cuda.synchronize() around it, 5 repetitions after a warm-up; prints ms per phase and G weights/s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    import torch

    from lorag.build.fast import gpu_quant, triton_quant

    def timed(fn, reps=5):  # type: ignore[no-untyped-def]
        fn()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            out = fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - t) / reps * 1000, out

    pinned = {}
    for shape in ((18944, 3584), (3584, 3584)):
        w = (torch.randn(shape, device="cuda") * 0.02).to(torch.bfloat16)
        ms_prep, rows = timed(lambda: w.to(torch.float16).float().reshape(-1, shape[1]))
        n = rows.numel()
        for qtype in ("Q4_K", "Q6_K"):
            ms_q, data = timed(lambda: gpu_quant.quantize(qtype, rows))
            ms_d2h, _ = timed(lambda: data.cpu().numpy())
            buf = pinned.setdefault(data.numel(), torch.empty(data.numel(), dtype=torch.uint8, pin_memory=True))
            ms_pin, _ = timed(lambda: buf.copy_(data, non_blocking=False))
            line = (f"{qtype} {shape}: prep {ms_prep:.2f} ms, quantize {ms_q:.2f} ms ({n / ms_q / 1e6:.2f} G/s), "
                    f"D2H pageable {ms_d2h:.2f} ms, D2H pinned {ms_pin:.2f} ms")
            if qtype == "Q4_K":
                x = rows.reshape(-1, 32)
                steps = [float(-1.0 + 0.1 * s + 15) for s in range(21)]
                ms_s, _ = timed(lambda: triton_quant.make_qkx2_quants(x, 15, steps))
                line += f"; of which the Triton search {ms_s:.2f} ms ({n / ms_s / 1e6:.2f} G/s)"
            print(line, flush=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA,
                                            torch.profiler.ProfilerActivity.CPU]) as prof:
        gpu_quant.quantize("Q4_K", rows)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14))


if __name__ == "__main__":
    main()
