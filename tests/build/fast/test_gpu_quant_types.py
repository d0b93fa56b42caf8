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
    assert (ours != ggml).mean() < 0.02  # near-ties of the scale search only (float sums in another order)
    assert _rmse("Q5_K", ours, x) <= _rmse("Q5_K", ggml, x) * 1.001
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
