"""Q5_K (used by Q4_K_S and Q5_K_M) in torch against ggml's own quantizer, and the types the GPU path covers."""

from __future__ import annotations

import numpy as np
import pytest

from lorag.build.fast import gpu_quant
from lorag.build.fast.mixture import FTYPES, MixturePlanner


def _ggml_available() -> bool:
    from lorag.build.fast.ggml import load_ggml
    from lorag.errors import BuildError

    try:
        load_ggml()
    except BuildError:
        return False
    return True


def _weights(seed: int, rows: int = 64, cols: int = 1024) -> np.ndarray:
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, cols, generator=gen) * 0.02
    x[0, :32] = 0.0  # an all-zero sub-block
    x[1, :256] = -1e-3  # a constant negative block
    x[2, 5] = 0.5  # an outlier
    return x.to(torch.bfloat16).to(torch.float16).float().numpy()


def _rmse(qtype: str, data: np.ndarray, x: np.ndarray) -> float:
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    back = dequantize(data, getattr(GGMLQuantizationType, qtype)).reshape(x.shape)
    return float(np.sqrt(((back - x) ** 2).mean()))


@pytest.mark.skipif(not _ggml_available(), reason="libggml-base.so not found")
@pytest.mark.parametrize("seed", [3, 4])
def test_torch_q5_k_matches_ggml(seed: int) -> None:
    import torch

    from lorag.build.fast.ggml import quantize_rows

    x = _weights(seed)
    ours = gpu_quant.quantize("Q5_K", torch.from_numpy(x)).numpy()
    ggml = quantize_rows("Q5_K", x, threads=2)
    assert ours.nbytes == ggml.nbytes == 64 * 4 * 176
    assert (ours != ggml).mean() < 0.005  # near-ties of the scale search only (float sums in another order)
    assert _rmse("Q5_K", ours, x) <= _rmse("Q5_K", ggml, x)
    # the constant block and the zero sub-block come out exactly as ggml writes them
    assert np.array_equal(ours[:176 * 4], ggml[:176 * 4])


@pytest.mark.parametrize("ftype", ["Q4_K_S", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"])
def test_every_tensor_type_of_the_mixtures_runs_on_the_gpu_path(ftype: str) -> None:
    n_layer = 32
    names = [f"blk.{i}.{t}.weight" for i in range(n_layer) for t in ("attn_q", "attn_v", "ffn_down", "ffn_up")]
    planner = MixturePlanner(ftype, n_layer, names=["output.weight", "token_embd.weight", *names])
    chosen = {planner.choose(n, (4096, 4096), "F16") for n in ["output.weight", "token_embd.weight", *names]}
    assert chosen <= set(gpu_quant.TORCH_TYPES), chosen - set(gpu_quant.TORCH_TYPES)
    assert FTYPES[ftype][0] in chosen


def test_division_is_rounded_once_as_in_c() -> None:
    """30.5 / s * s must stay on the rounding half where C's single division puts it (Q5_K's first step)."""
    import torch

    span = torch.tensor([0.09130859375, 0.0123291015625, 1.0 / 3.0], dtype=torch.float32)
    exact = (np.float32(30.5) / span.numpy()).astype(np.float32)
    assert np.array_equal(gpu_quant._div(30.5, span).numpy(), exact)
    assert np.array_equal(gpu_quant._div(span, 63.0).numpy(), (span.numpy() / np.float32(63.0)).astype(np.float32))


def _triton_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("triton") is not None


@pytest.mark.skipif(not (_triton_available() and _ggml_available()), reason="triton or libggml-base.so missing")
@pytest.mark.parametrize("qtype", ["Q4_K", "Q5_K"])
def test_fused_scale_search_matches_ggml(qtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Triton kernel, run by Triton's interpreter on the CPU (set before triton_quant is first imported)."""
    import torch

    from lorag.build.fast.ggml import quantize_rows

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    x = _weights(5, rows=8)
    fused = gpu_quant.quantize(qtype, torch.from_numpy(x)).numpy()
    ggml = quantize_rows(qtype, x, threads=2)
    # on these 8 rows not even a near-tie differs (the GPU run: 0.02-0.09 % of bytes on 2048 rows)
    assert np.array_equal(fused, ggml)


def test_the_warm_up_quantizes_to_every_type_the_gpu_path_covers() -> None:
    # On CUDA it compiles the Triton kernels into Triton's cache at install; here (no GPU) it only shows every type
    # runs on a tensor of its shape, whose sizes are divisible by 16 as a real weight's are.
    assert gpu_quant.warm_up("cpu") == list(gpu_quant.TORCH_TYPES)
