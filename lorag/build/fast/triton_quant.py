"""make_qkx2_quants (the Q4_K / Q5_K scale search) as one Triton kernel: each sub-block of 32 stays in registers.

The torch version in gpu_quant.py makes ~20 passes over the weights in memory per search step; here every
step works on registers and the weights are read once. The arithmetic follows ggml-quants.c step by step:
divisions and square roots correctly rounded (div_rn, sqrt_rn), nearest_int's own 1.5·2^23 trick, no fused
multiply-adds, and each candidate's error summed element by element as ggml does. Only the order of the 32-term sums
differs (a tree instead of left to right). Imported only where triton and a CUDA device are present.
"""

from __future__ import annotations

from typing import Any

import triton
import triton.language as tl

_ROWS = 32  # sub-blocks per program


@triton.jit
def _nearest(v):  # type: ignore[no-untyped-def]
    # ggml's nearest_int: adding 1.5·2^23 rounds to an integer, halves to even (|v| < 2^22 here)
    return (v + 12582912.0) - 12582912.0


@triton.jit
def _qkx2_kernel(  # type: ignore[no-untyped-def]
        x_ptr, c_ptr, scale_ptr, min_ptr, lvl_ptr, n, NMAX: tl.constexpr, NSTEP: tl.constexpr, ROWS: tl.constexpr):
    pid = tl.program_id(0)
    rows = pid * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, 32)
    inside = rows < n
    offs = rows[:, None] * 32 + cols[None, :]
    x = tl.load(x_ptr + offs, mask=inside[:, None], other=0.0)
    av_x = tl.math.sqrt_rn(tl.math.div_rn(tl.sum(x * x, axis=1), 32.0))
    w = av_x[:, None] + tl.abs(x)
    mn = tl.minimum(tl.min(x, axis=1), 0.0)
    mx = tl.max(x, axis=1)
    flat = mx == mn
    sum_w = tl.sum(w, axis=1)
    sum_x = tl.sum(w * x, axis=1)
    iscale = tl.math.div_rn(tl.full((ROWS,), NMAX, tl.float32), tl.where(flat, 1.0, mx - mn))
    scale = tl.math.div_rn(tl.full((ROWS,), 1.0, tl.float32), iscale)
    levels = tl.minimum(tl.maximum(_nearest((x - mn[:, None]) * iscale[:, None]), 0.0), NMAX)
    diff = scale[:, None] * levels + mn[:, None] - x
    best = tl.sum(w * (diff * diff), axis=1)
    best_min = mn
    for step in range(NSTEP + 1):
        c = tl.load(c_ptr + step)
        span = tl.where(flat, 1.0, mx - best_min)
        span = tl.where(span != 0.0, span, 1.0)
        k = tl.math.div_rn(tl.full((ROWS,), 1.0, tl.float32) * c, span)
        lv = tl.minimum(tl.maximum(_nearest((x - best_min[:, None]) * k[:, None]), 0.0), NMAX)
        wl = w * lv
        s_l = tl.sum(wl, axis=1)
        s_l2 = tl.sum(wl * lv, axis=1)
        s_xl = tl.sum(wl * x, axis=1)
        big_d = sum_w * s_l2 - s_l * s_l
        ok = big_d > 0.0
        safe_d = tl.where(ok, big_d, 1.0)
        this_scale = tl.math.div_rn(sum_w * s_xl - sum_x * s_l, safe_d)
        this_min = tl.math.div_rn(s_l2 * sum_x - s_l * s_xl, safe_d)
        pos = this_min > 0.0
        this_scale = tl.where(pos, tl.math.div_rn(s_xl, tl.where(s_l2 != 0.0, s_l2, 1.0)), this_scale)
        this_min = tl.where(pos, 0.0, this_min)
        d2 = this_scale[:, None] * lv + this_min[:, None] - x
        cur = tl.sum(w * (d2 * d2), axis=1)
        better = ok & (cur < best)
        levels = tl.where(better[:, None], lv, levels)
        best = tl.where(better, cur, best)
        scale = tl.where(better, this_scale, scale)
        best_min = tl.where(better, this_min, best_min)
    levels = tl.where(flat[:, None], 0.0, levels)
    scale = tl.where(flat, 0.0, scale)
    tl.store(scale_ptr + rows, scale, mask=inside)
    tl.store(min_ptr + rows, -best_min, mask=inside)
    tl.store(lvl_ptr + offs, levels.to(tl.uint8), mask=inside[:, None])


def make_qkx2_quants(x: Any, nmax: int, steps: list[float]) -> tuple[Any, Any, Any]:
    """(scale (N,), min (N,), levels (N, 32) uint8) for sub-blocks x: (N, 32) float32 on a CUDA device.

    ``steps`` are ggml's candidate numerators rmin + rdelta·is + nmax, each rounded to float32.
    """
    import torch

    x = x.contiguous()
    n = x.shape[0]
    c = torch.tensor(steps, dtype=torch.float32).to(x.device, non_blocking=True)
    scale = torch.empty(n, dtype=torch.float32, device=x.device)
    mins = torch.empty(n, dtype=torch.float32, device=x.device)
    levels = torch.empty(n, 32, dtype=torch.uint8, device=x.device)
    grid = (triton.cdiv(n, _ROWS),)
    _qkx2_kernel[grid](x, c, scale, mins, levels, n, NMAX=nmax, NSTEP=len(steps) - 1, ROWS=_ROWS,
                       enable_fp_fusion=False)
    return scale, mins, levels
