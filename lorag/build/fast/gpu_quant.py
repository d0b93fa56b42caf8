"""ggml's reference quantizers for Q8_0, Q6_K and Q4_K, re-implemented in torch over all blocks at once.

The algorithms follow quantize_row_q8_0_ref, quantize_row_q6_K_ref/make_qx_quants and
quantize_row_q4_K_ref/make_qkx2_quants in ggml-quants.c; only the order of float summations differs (ggml sums
left to right, torch in trees), so a few near-tie choices can differ. Runs on CUDA or CPU.
"""

from __future__ import annotations

from typing import Any

GROUP_MAX_EPS = 1e-15
TORCH_TYPES = ("F32", "F16", "Q8_0", "Q6_K", "Q4_K")
_CHUNK_ELEMENTS = 1 << 25  # bounds the temporaries: ~30 float buffers of this size at most


def quantize(qtype: str, x: Any) -> Any:
    """Quantize a float32 (rows, cols) tensor to ggml ``qtype`` bytes (a flat uint8 tensor, same device)."""
    import torch

    if qtype == "F32":
        return x.contiguous().view(torch.uint8).reshape(-1)
    if qtype == "F16":
        return x.to(torch.float16).contiguous().view(torch.uint8).reshape(-1)
    fn = {"Q8_0": _q8_0, "Q6_K": _q6_k, "Q4_K": _q4_k}[qtype]
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // x.shape[1])
    parts = [fn(x[r:r + rows_per_chunk].reshape(-1)) for r in range(0, x.shape[0], rows_per_chunk)]
    return torch.cat(parts) if len(parts) > 1 else parts[0]


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
    d = amax / 127.0
    inv = torch.where(d != 0, 1.0 / d, torch.zeros_like(d))
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

    def attempt(iscale: Any) -> tuple[Any, Any, Any]:
        lv = torch.round(iscale * x).clamp(-nmax, nmax - 1)
        return lv, (w * x * lv).sum(1, keepdim=True), (w * lv * lv).sum(1, keepdim=True)

    lv, sumlx, suml2 = attempt(-nmax / safe_max)
    scale = torch.where(suml2 != 0, sumlx / torch.where(suml2 != 0, suml2, torch.ones_like(suml2)),
                        torch.zeros_like(suml2))
    best = scale * sumlx
    best_l = lv
    for step in range(-9, 10):
        if step == 0:
            continue
        c = _f32(_f32(nmax) + _f32(_f32(0.1) * step))
        lv, sumlx, suml2 = attempt(-c / safe_max)
        better = (suml2 > 0) & (sumlx * sumlx > best * suml2)
        new_scale = sumlx / torch.where(suml2 > 0, suml2, torch.ones_like(suml2))
        best_l = torch.where(better, lv, best_l)
        scale = torch.where(better, new_scale, scale)
        best = torch.where(better, scale * sumlx, best)
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
    iscale = -128.0 / torch.where(empty, torch.ones_like(max_scale), max_scale)
    d16 = (1.0 / iscale).to(torch.float16)
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


def _make_qkx2_quants_q4(x: Any) -> tuple[Any, Any, Any]:
    """make_qkx2_quants(32, 15, x, weights, ..., -1, 0.1, 20, false) over sub-blocks x: (N, 32)."""
    import torch

    nmax = 15
    av_x = torch.sqrt((x * x).sum(1, keepdim=True) / 32)
    w = av_x + x.abs()
    mn = x.amin(1, keepdim=True).clamp(max=0)
    mx = x.amax(1, keepdim=True)
    flat = mx == mn
    span = torch.where(flat, torch.ones_like(mx), mx - mn)
    sum_w = w.sum(1, keepdim=True)
    sum_x = (w * x).sum(1, keepdim=True)
    iscale = nmax / span
    scale = 1 / iscale
    levels = torch.round(iscale * (x - mn)).clamp(0, nmax)
    best_error = (w * (scale * levels + mn - x) ** 2).sum(1, keepdim=True)
    best_min = mn
    for step in range(21):
        c = _f32(_f32(_f32(-1.0) + _f32(_f32(0.1) * step)) + nmax)
        # ggml keeps searching from the best min found so far (its `min` is updated inside the loop)
        span = torch.where(flat, torch.ones_like(mx), mx - best_min)
        span = torch.where(span != 0, span, torch.ones_like(span))
        laux = torch.round((c / span) * (x - best_min)).clamp(0, nmax)
        sum_l = (w * laux).sum(1, keepdim=True)
        sum_l2 = (w * laux * laux).sum(1, keepdim=True)
        sum_xl = (w * laux * x).sum(1, keepdim=True)
        big_d = sum_w * sum_l2 - sum_l * sum_l
        ok = big_d > 0
        safe_d = torch.where(ok, big_d, torch.ones_like(big_d))
        this_scale = (sum_w * sum_xl - sum_x * sum_l) / safe_d
        this_min = (sum_l2 * sum_x - sum_l * sum_xl) / safe_d
        pos = this_min > 0
        this_scale = torch.where(pos, sum_xl / torch.where(sum_l2 != 0, sum_l2, torch.ones_like(sum_l2)), this_scale)
        this_min = torch.where(pos, torch.zeros_like(this_min), this_min)
        cur = (w * (this_scale * laux + this_min - x) ** 2).sum(1, keepdim=True)
        better = ok & (cur < best_error)
        levels = torch.where(better, laux, levels)
        best_error = torch.where(better, cur, best_error)
        scale = torch.where(better, this_scale, scale)
        best_min = torch.where(better, this_min, best_min)
    levels = torch.where(flat, torch.zeros_like(levels), levels)
    scale = torch.where(flat, torch.zeros_like(scale), scale)
    return scale.squeeze(1), (-best_min).squeeze(1), levels


def _q4_k(flat: Any) -> Any:
    import torch

    nb = flat.numel() // 256
    x = flat.reshape(nb, 8, 32)
    scales, mins, levels = _make_qkx2_quants_q4(x.reshape(-1, 32))
    scales, mins, levels = scales.reshape(nb, 8), mins.reshape(nb, 8), levels.reshape(nb, 8, 32)
    max_scale = scales.amax(1, keepdim=True).clamp(min=0)
    max_min = mins.amax(1, keepdim=True).clamp(min=0)
    inv_scale = torch.where(max_scale > 0, 63.0 / torch.where(max_scale > 0, max_scale, torch.ones_like(max_scale)),
                            torch.zeros_like(max_scale))
    inv_min = torch.where(max_min > 0, 63.0 / torch.where(max_min > 0, max_min, torch.ones_like(max_min)),
                          torch.zeros_like(max_min))
    # (uint8_t) of the int, then MIN(63): negative values wrap first, as in C
    ls = (torch.round(inv_scale * scales).to(torch.int32) & 0xFF).clamp(max=63)
    lm = (torch.round(inv_min * mins).to(torch.int32) & 0xFF).clamp(max=63)
    d16 = (max_scale / 63.0).to(torch.float16)
    dmin16 = (max_min / 63.0).to(torch.float16)
    d = d16.float() * ls.float()
    dm = dmin16.float() * lm.float()
    safe_d = torch.where(d != 0, d, torch.ones_like(d)).unsqueeze(-1)
    fresh = torch.round((x + dm.unsqueeze(-1)) / safe_d).clamp(0, 15)
    levels = torch.where((d != 0).unsqueeze(-1), fresh, levels).to(torch.uint8).reshape(nb, 4, 2, 32)
    qs = (levels[:, :, 0] | (levels[:, :, 1] << 4)).reshape(nb, 128)
    sc = torch.zeros(nb, 12, dtype=torch.int32, device=flat.device)
    sc[:, 0:4] = ls[:, 0:4] | ((ls[:, 4:8] >> 4) << 6)
    sc[:, 4:8] = lm[:, 0:4] | ((lm[:, 4:8] >> 4) << 6)
    sc[:, 8:12] = (ls[:, 4:8] & 0xF) | ((lm[:, 4:8] & 0xF) << 4)
    out = torch.cat([d16.view(torch.uint8).reshape(nb, 2), dmin16.view(torch.uint8).reshape(nb, 2),
                     sc.to(torch.uint8), qs], dim=1)
    return out.reshape(-1)
