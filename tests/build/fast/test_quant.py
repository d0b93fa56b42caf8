"""The torch (GPU) quantizers against ggml's own, and llama.cpp's Q4_K_M mixture rules."""

from __future__ import annotations

import numpy as np
import pytest

from lorag.build.fast.mixture import MixturePlanner, quantize_order


def _ggml_available() -> bool:
    from lorag.build.fast.ggml import load_ggml
    from lorag.errors import BuildError

    try:
        load_ggml()
    except BuildError:
        return False
    return True


needs_ggml = pytest.mark.skipif(not _ggml_available(), reason="libggml-base.so not found")


def _weights(seed: int, rows: int = 48, cols: int = 1024) -> np.ndarray:
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, cols, generator=gen) * 0.02
    x[0, :32] = 0.0  # an all-zero block
    x[1, :256] = 1e-3  # a constant block
    return x.to(torch.bfloat16).to(torch.float16).float().numpy()


def _rmse(qtype: str, data: np.ndarray, x: np.ndarray) -> float:
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    back = dequantize(data, getattr(GGMLQuantizationType, qtype)).reshape(x.shape)
    return float(np.sqrt(((back - x) ** 2).mean()))


@needs_ggml
def test_torch_q8_0_is_byte_identical_to_ggml() -> None:
    import torch

    from lorag.build.fast import gpu_quant
    from lorag.build.fast.ggml import quantize_rows

    x = _weights(1)
    assert np.array_equal(gpu_quant.quantize("Q8_0", torch.from_numpy(x)).numpy(), quantize_rows("Q8_0", x, threads=2))


@needs_ggml
@pytest.mark.parametrize("qtype", ["Q4_K", "Q6_K"])
def test_torch_k_quants_match_ggml_error(qtype: str) -> None:
    import torch

    from lorag.build.fast import gpu_quant
    from lorag.build.fast.ggml import quantize_rows

    x = _weights(2)
    ours = gpu_quant.quantize(qtype, torch.from_numpy(x)).numpy()
    ggml = quantize_rows(qtype, x, threads=2)
    assert ours.nbytes == ggml.nbytes
    # Only near-ties in the scale search may differ (float sums in another order)...
    assert (ours != ggml).mean() < 0.01
    # ...and the error is no worse than ggml's.
    assert _rmse(qtype, ours, x) <= _rmse(qtype, ggml, x) * 1.001


def test_q4_k_m_mixture_follows_llama_quantize() -> None:
    n_layer = 28
    names = ["token_embd.weight", "output_norm.weight"]
    for i in range(n_layer):
        names += [f"blk.{i}.attn_v.weight", f"blk.{i}.ffn_down.weight", f"blk.{i}.attn_q.weight",
                  f"blk.{i}.attn_norm.weight"]
    order = quantize_order(names)
    planner = MixturePlanner("Q4_K_M", n_layer, names=order)
    types = {n: planner.choose(n, (3584,) if n.endswith("norm.weight") else (512, 3584), "F16") for n in order}
    assert types["token_embd.weight"] == "Q6_K"  # tied embeddings are quantized like the output
    assert types["output_norm.weight"] == "F16"  # 1-D tensors keep their type
    more_bits = [i for i in range(n_layer) if types[f"blk.{i}.attn_v.weight"] == "Q6_K"]
    assert more_bits == [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]
    assert [i for i in range(n_layer) if types[f"blk.{i}.ffn_down.weight"] == "Q6_K"] == more_bits
    assert {types[f"blk.{i}.attn_q.weight"] for i in range(n_layer)} == {"Q4_K"}


def test_mixture_falls_back_when_rows_are_not_whole_blocks() -> None:
    planner = MixturePlanner("Q4_K_M", 2, names=["blk.0.attn_q.weight"])
    assert planner.choose("blk.0.attn_q.weight", (64, 96), "F16") == "Q5_0"
    assert planner.choose("blk.0.attn_q.weight", (64, 40), "F16") == "F16"
