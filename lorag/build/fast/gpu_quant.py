"""ggml's reference quantizers for Q8_0, Q6_K, Q5_K and Q4_K, re-implemented in torch over all blocks at once.

The algorithms follow quantize_row_q8_0_ref, quantize_row_q6_K_ref/make_qx_quants and
quantize_row_q4_K_ref / quantize_row_q5_K_ref with make_qkx2_quants in ggml-quants.c; only the order of
float summations differs (ggml sums left to right, torch in trees), so a few near-tie choices can differ.
Runs on CUDA or CPU. On CUDA with triton installed the Q4_K / Q5_K scale search runs as one fused kernel
(triton_quant.py, ~4-10x faster); LORAG_GPU_QUANT=torch keeps the torch version.
"""

from __future__ import annotations

import os
from typing import Any

GROUP_MAX_EPS = 1e-15
TORCH_TYPES = ("F32", "F16", "Q8_0", "Q6_K", "Q5_K", "Q4_K")
_CHUNK_ELEMENTS = 1 << 25  # bounds the temporaries: ~30 float buffers of this size at most


def quantize(qtype: str, x: Any) -> Any:
    """Quantize a float32 (rows, cols) tensor to ggml ``qtype`` bytes (a flat uint8 tensor, same device)."""
    import torch

    if qtype == "F32":
        return x.contiguous().view(torch.uint8).reshape(-1)
    if qtype == "F16":
        return x.to(torch.float16).contiguous().view(torch.uint8).reshape(-1)
    fn = {"Q8_0": _q8_0, "Q6_K": _q6_k, "Q5_K": _q5_k, "Q4_K": _q4_k}[qtype]
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // x.shape[1])
    parts = [fn(x[r:r + rows_per_chunk].reshape(-1)) for r in range(0, x.shape[0], rows_per_chunk)]
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def warm_up(device: str) -> list[str]:
    """Quantize a small tensor to each type on ``device`` (the types done).

    On CUDA this compiles the Triton kernels into Triton's own cache (~/.triton, kept between processes) and loads
    the kernels torch uses, so the first build after an install does not compile them (3-4 s on an H200) and the
    preload profile recorded after it holds their pages. The tensor's sizes are divisible by 16, as every
    quantized tensor's are: Triton compiles one variant per such property of its arguments.
    """
    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 512, generator=gen).to(device)
    done = [t for t in TORCH_TYPES if quantize(t, x).numel() > 0]
    if x.is_cuda:
        torch.cuda.synchronize()
    return done


def _div(num: Any, den: Any) -> Any:
    """num / den rounded once, as C divides floats.

    torch divides by a Python number as a multiplication by its reciprocal, and a Python number by a tensor
    as reciprocal-then-multiply: two roundings, which move values that sit exactly on a rounding half (the
    largest element at step 0 of Q5_K's scale search) to the other level. A 0-dim tensor on the same device
    makes it a true division.
    """
    import torch

    like = den if isinstance(num, float) else num
    if isinstance(num, float):
        num = torch.full((), num, dtype=like.dtype, device=like.device)
    if isinstance(den, float):
        den = torch.full((), den, dtype=like.dtype, device=like.device)
    return torch.div(num, den)


def _f16_bytes(v: Any) -> Any:
    import torch

    return v.to(torch.float16).unsqueeze(-1).contiguous().view(torch.uint8)


def _f32(value: float) -> Any:
    import numpy as np

    return float(np.float32(value))


def _q8_0(flat: Any) -> Any:
    import torch

    x = flat.reshape(-1, 32)
    amax = x.abs().amax(dim=1, keepdim=True)
    d = _div(amax, 127.0)
    inv = torch.where(d != 0, _div(1.0, d), torch.zeros_like(d))
    v = x * inv
    # roundf: halves away from zero (torch.round would round them to even)
    t = torch.trunc(v)
    q = t + torch.sign(v) * ((v - t).abs() >= 0.5).to(v.dtype)
    qs = q.to(torch.int8).view(torch.uint8)
    return torch.cat([_f16_bytes(d.squeeze(1)), qs], dim=1).reshape(-1)


def _make_qx_quants_q6(x: Any) -> tuple[Any, Any]:
    """make_qx_quants(16, 32, x, L, rmse_type=1, NULL) over sub-blocks x: (N, 16) → (scale (N,), L (N, 16))."""
    import torch

    nmax = 32
    idx = x.abs().argmax(dim=1, keepdim=True)
    mx = x.gather(1, idx)
    amax = mx.abs()
    zero = amax < GROUP_MAX_EPS
    safe_max = torch.where(zero, torch.ones_like(mx), mx)
    w = x * x
    wx = w * x

    def attempt(iscale: Any) -> tuple[Any, Any, Any]:
        lv = torch.mul(iscale, x).round_().clamp_(-nmax, nmax - 1)
        return lv, (wx * lv).sum(1, keepdim=True), ((w * lv) * lv).sum(1, keepdim=True)

    first = _div(float(-nmax), safe_max)
    lv, sumlx, suml2 = attempt(first)
    scale = torch.where(suml2 != 0, sumlx / torch.where(suml2 != 0, suml2, torch.ones_like(suml2)),
                        torch.zeros_like(suml2))
    best = scale * sumlx
    best_iscale, improved = first, torch.zeros_like(zero)
    for step in range(-9, 10):
        if step == 0:
            continue
        c = _f32(_f32(nmax) + _f32(_f32(0.1) * step))
        iscale = _div(-c, safe_max)
        _, sumlx, suml2 = attempt(iscale)
        better = (suml2 > 0) & (sumlx * sumlx > best * suml2)
        new_scale = sumlx / torch.where(suml2 > 0, suml2, torch.ones_like(suml2))
        # the levels of the best step are rebuilt once at the end from its iscale
        best_iscale = torch.where(better, iscale, best_iscale)
        improved = improved | better
        scale = torch.where(better, new_scale, scale)
        best = torch.where(better, scale * sumlx, best)
    best_l = torch.where(improved, attempt(best_iscale)[0], lv)
    levels = torch.where(zero, torch.zeros_like(best_l), best_l + nmax)
    return torch.where(zero, torch.zeros_like(scale), scale).squeeze(1), levels


def _q6_k(flat: Any) -> Any:
    import torch

    nb = flat.numel() // 256
    x = flat.reshape(nb, 16, 16)
    scales, levels = _make_qx_quants_q6(x.reshape(-1, 16))
    scales, levels = scales.reshape(nb, 16), levels.reshape(nb, 16, 16)
    idx = scales.abs().argmax(dim=1, keepdim=True)
    max_scale = scales.gather(1, idx)
    empty = max_scale.abs() < GROUP_MAX_EPS
    iscale = _div(-128.0, torch.where(empty, torch.ones_like(max_scale), max_scale))
    d16 = _div(1.0, iscale).to(torch.float16)
    qscales = torch.round(iscale * scales).clamp(max=127)
    d = d16.float() * qscales  # (nb, 16)
    safe_d = torch.where(d != 0, d, torch.ones_like(d)).unsqueeze(-1)
    fresh = torch.round(x / safe_d).clamp(-32, 31) + 32
    levels = torch.where((d != 0).unsqueeze(-1), fresh, levels).reshape(nb, 2, 4, 32).to(torch.uint8)
    low = levels & 0xF
    ql = torch.cat([low[:, :, 0] | (low[:, :, 2] << 4), low[:, :, 1] | (low[:, :, 3] << 4)], dim=2)
    high = levels >> 4
    qh = high[:, :, 0] | (high[:, :, 1] << 2) | (high[:, :, 2] << 4) | (high[:, :, 3] << 6)
    sc = qscales.to(torch.int8).view(torch.uint8)
    d16 = torch.where(empty, torch.zeros_like(d16), d16)
    sc = torch.where(empty, torch.zeros_like(sc), sc)
    ql = torch.where(empty.unsqueeze(-1), torch.zeros_like(ql), ql)
    qh = torch.where(empty.unsqueeze(-1), torch.zeros_like(qh), qh)
    out = torch.cat([ql.reshape(nb, 128), qh.reshape(nb, 64), sc, d16.view(torch.uint8).reshape(nb, 2)], dim=1)
    return out.reshape(-1)


def _make_qkx2_quants(x: Any, nmax: int, rmin: float, nstep: int) -> tuple[Any, Any, Any]:
    """make_qkx2_quants(32, nmax, x, weights, ..., rmin, 0.1, nstep, false) over sub-blocks x: (N, 32)."""
    import torch

    av_x = torch.sqrt(_div((x * x).sum(1, keepdim=True), 32.0))
    w = av_x + x.abs()
    mn = x.amin(1, keepdim=True).clamp(max=0)
    mx = x.amax(1, keepdim=True)
    flat = mx == mn
    span = torch.where(flat, torch.ones_like(mx), mx - mn)
    wx = w * x
    sum_w, sum_x = w.sum(1, keepdim=True), wx.sum(1, keepdim=True)
    iscale = _div(float(nmax), span)

    def level_sums(k: Any, lo: Any) -> tuple[Any, Any, Any, Any]:
        # ggml: nearest_int(iscale*(x - min)), clamped; the same operations in the same order
        levels = torch.sub(x, lo).mul_(k).round_().clamp_(0, nmax)
        wl = w * levels
        return levels, wl.sum(1, keepdim=True), (wl * levels).sum(1, keepdim=True), (wl * x).sum(1, keepdim=True)

    levels = level_sums(iscale, mn)[0]
    scale = _div(1.0, iscale)
    best_error = (w * (scale * levels + mn - x).square_()).sum(1, keepdim=True)
    best_min = mn
    best_k, best_lo, improved = iscale, mn, torch.zeros_like(flat)
    for step in range(nstep + 1):
        c = _f32(_f32(_f32(rmin) + _f32(_f32(0.1) * step)) + nmax)
        # ggml keeps searching from the best min found so far (its `min` is updated inside the loop)
        span = torch.where(flat, torch.ones_like(mx), mx - best_min)
        span = torch.where(span != 0, span, torch.ones_like(span))
        k = _div(c, span)
        lv, sum_l, sum_l2, sum_xl = level_sums(k, best_min)
        big_d = sum_w * sum_l2 - sum_l * sum_l
        ok = big_d > 0
        safe_d = torch.where(ok, big_d, torch.ones_like(big_d))
        this_scale = (sum_w * sum_xl - sum_x * sum_l) / safe_d
        this_min = (sum_l2 * sum_x - sum_l * sum_xl) / safe_d
        pos = this_min > 0
        this_scale = torch.where(pos, sum_xl / torch.where(sum_l2 != 0, sum_l2, torch.ones_like(sum_l2)), this_scale)
        this_min = torch.where(pos, torch.zeros_like(this_min), this_min)
        # summed element by element as ggml does: expanded into the row sums, the float32 rounding of those sums
        # decides near-ties (measured on the GPU: error 1.00001x ggml's that way)
        cur = (w * (this_scale * lv + this_min - x).square_()).sum(1, keepdim=True)
        better = ok & (cur < best_error)
        # remember how this step's levels were made instead of keeping them: rebuilt once at the end
        best_k, best_lo = torch.where(better, k, best_k), torch.where(better, best_min, best_lo)
        improved = improved | better
        best_error = torch.where(better, cur, best_error)
        scale = torch.where(better, this_scale, scale)
        best_min = torch.where(better, this_min, best_min)
    levels = torch.where(improved, level_sums(best_k, best_lo)[0], levels)
    levels = torch.where(flat, torch.zeros_like(levels), levels)
    scale = torch.where(flat, torch.zeros_like(scale), scale)
    return scale.squeeze(1), (-best_min).squeeze(1), levels


def _fused(x: Any) -> Any:
    """The Triton module for tensors on a CUDA device when triton is installed (or under TRITON_INTERPRET=1),
    else None; LORAG_GPU_QUANT=torch keeps the torch version."""
    if os.environ.get("LORAG_GPU_QUANT") == "torch":
        return None
    if not (x.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"):
        return None
    try:
        from lorag.build.fast import triton_quant
    except ImportError:
        return None
    return triton_quant


def _k_levels(flat: Any, nmax: int, rmin: float, nstep: int) -> tuple[Any, Any, int]:
    """The Q4_K / Q5_K recipe up to the bit packing: f16 d and dmin, the 12 packed scale bytes, and the levels."""
    import torch

    nb = flat.numel() // 256
    x = flat.reshape(nb, 8, 32)
    fused = _fused(flat)
    if fused is not None:
        steps = [_f32(_f32(_f32(rmin) + _f32(_f32(0.1) * step)) + nmax) for step in range(nstep + 1)]
        scales, mins, levels = fused.make_qkx2_quants(x.reshape(-1, 32), nmax, steps)
    else:
        scales, mins, levels = _make_qkx2_quants(x.reshape(-1, 32), nmax, rmin, nstep)
    scales, mins, levels = scales.reshape(nb, 8), mins.reshape(nb, 8), levels.reshape(nb, 8, 32)
    max_scale = scales.amax(1, keepdim=True).clamp(min=0)
    max_min = mins.amax(1, keepdim=True).clamp(min=0)
    inv_scale = torch.where(max_scale > 0, _div(63.0, torch.where(max_scale > 0, max_scale, 1.0)), 0.0)
    inv_min = torch.where(max_min > 0, _div(63.0, torch.where(max_min > 0, max_min, 1.0)), 0.0)
    # (uint8_t) of the int, then MIN(63): negative values wrap first, as in C
    ls = (torch.round(inv_scale * scales).to(torch.int32) & 0xFF).clamp(max=63)
    lm = (torch.round(inv_min * mins).to(torch.int32) & 0xFF).clamp(max=63)
    d16 = _div(max_scale, 63.0).to(torch.float16)
    dmin16 = _div(max_min, 63.0).to(torch.float16)
    d = d16.float() * ls.float()
    dm = dmin16.float() * lm.float()
    safe_d = torch.where(d != 0, d, torch.ones_like(d)).unsqueeze(-1)
    fresh = torch.round((x + dm.unsqueeze(-1)) / safe_d).clamp(0, nmax)
    levels = torch.where((d != 0).unsqueeze(-1), fresh, levels).to(torch.uint8)
    sc = torch.zeros(nb, 12, dtype=torch.int32, device=flat.device)
    sc[:, 0:4] = ls[:, 0:4] | ((ls[:, 4:8] >> 4) << 6)
    sc[:, 4:8] = lm[:, 0:4] | ((lm[:, 4:8] >> 4) << 6)
    sc[:, 8:12] = (ls[:, 4:8] & 0xF) | ((lm[:, 4:8] & 0xF) << 4)
    head = torch.cat([d16.view(torch.uint8).reshape(nb, 2), dmin16.view(torch.uint8).reshape(nb, 2),
                      sc.to(torch.uint8)], dim=1)
    return head, levels.reshape(nb, 4, 2, 32), nb


def _q4_k(flat: Any) -> Any:
    """quantize_row_q4_K_ref: 4-bit levels, two sub-blocks of 32 per byte."""
    import torch

    head, levels, nb = _k_levels(flat, 15, -1.0, 20)
    qs = (levels[:, :, 0] | (levels[:, :, 1] << 4)).reshape(nb, 128)
    return torch.cat([head, qs], dim=1).reshape(-1)


def _q5_k(flat: Any) -> Any:
    """quantize_row_q5_K_ref: the low 4 bits as in Q4_K, the fifth bit of each level in qh."""
    import torch

    head, levels, nb = _k_levels(flat, 31, -0.5, 15)
    low, high = levels & 0xF, levels >> 4
    qs = (low[:, :, 0] | (low[:, :, 1] << 4)).reshape(nb, 128)
    shifts = torch.arange(4, device=flat.device, dtype=torch.uint8).reshape(1, 4, 1) * 2
    qh = ((high[:, :, 0] << shifts) | (high[:, :, 1] << (shifts + 1))).sum(1, dtype=torch.int32).to(torch.uint8)
    return torch.cat([head, qh, qs], dim=1).reshape(-1)
