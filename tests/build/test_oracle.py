"""lorag's build against llama.cpp's own route on the same tiny models: same tensors, metadata and bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _tensors(path: Path) -> dict[str, tuple[int, tuple[int, ...], str]]:
    """name → (ggml type, dims, sha256 of the tensor's bytes)."""
    from lorag.inspect.gguf_meta import read_gguf

    data = path.read_bytes()
    return {t.name: (t.ggml_type, t.dims, hashlib.sha256(data[t.start:t.end]).hexdigest())
            for t in read_gguf(path).tensors}


def _metadata(path: Path) -> dict[str, object]:
    from lorag.inspect.gguf_meta import read_gguf

    return read_gguf(path, with_tensors=False).metadata


def test_fast_reader_agrees_with_gguf_reader(qwen2_q4) -> None:
    """lorag's metadata reader (used above and in the build) against gguf-py's, on the tensor directory."""
    from gguf import GGUFReader

    from lorag.inspect.gguf_meta import read_gguf

    ours = {t.name: t for t in read_gguf(qwen2_q4.gguf).tensors}
    for t in GGUFReader(str(qwen2_q4.gguf)).tensors:
        assert ours[t.name].ggml_type == int(t.tensor_type)
        assert ours[t.name].dims == tuple(int(d) for d in t.shape)
        assert ours[t.name].start == t.data_offset


def test_qwen2_q4_k_m_is_byte_identical_to_llama_cpp_route(qwen2_q4, qwen2_reference) -> None:
    mine, ref = _tensors(qwen2_q4.gguf), _tensors(qwen2_reference["Q4_K_M"])
    assert sorted(mine) == sorted(ref)
    for name, (qtype, shape, data) in ref.items():
        assert mine[name][0] == qtype, name
        assert mine[name][1] == shape, name
        assert mine[name][2] == data, name


def test_qwen2_metadata_matches_reference(qwen2_q4, qwen2_reference) -> None:
    mine, ref = _metadata(qwen2_q4.gguf), _metadata(qwen2_reference["Q4_K_M"])
    assert sorted(mine) == sorted(ref)
    differing = {k for k in ref if mine[k] != ref[k]}
    assert differing <= {"general.name", "general.size_label"}, differing  # the name comes from the folder


def test_llama_f16_tensors_equal_reference(llama_f16, llama_reference) -> None:
    mine, ref = _tensors(llama_f16.gguf), _tensors(llama_reference["F16"])
    assert sorted(mine) == sorted(ref)
    for name, (qtype, shape, data) in ref.items():
        assert (mine[name][0], mine[name][1]) == (qtype, shape), name
        assert mine[name][2] == data, name
    assert sorted(_metadata(llama_f16.gguf)) == sorted(_metadata(llama_reference["F16"]))


def test_fidelity_reported_and_f16_conversion_exact(qwen2_q4, llama_f16) -> None:
    assert llama_f16.fidelity["kl_mean"] < 1e-4
    assert llama_f16.fidelity["f16_kl_mean"] == llama_f16.fidelity["kl_mean"]
    # The single-pass route writes no F16 intermediate: its conversion is checked byte for byte against
    # llama.cpp's route above, and on F16 builds (llama_f16) by KL.
    assert qwen2_q4.fidelity.get("f16_kl_mean", 0.0) < 1e-4
    assert 0 < qwen2_q4.fidelity["kl_mean"] < 0.25
    assert 0.0 <= qwen2_q4.fidelity["top1"] <= 1.0
    assert isinstance(qwen2_q4.fidelity["sample"], str)


def test_chat_template_embedded(qwen2_q4, tiny_qwen2: Path) -> None:
    from lorag.inspect.gguf_meta import gguf_string as read_gguf_string

    expected = (tiny_qwen2 / "chat_template.jinja").read_text(encoding="utf-8")
    assert read_gguf_string(qwen2_q4.gguf, "tokenizer.chat_template") == expected


def test_f16_gguf_loads_in_transformers_and_matches_merged(llama_f16, llama_reference) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from lorag.build.fidelity import compare

    ids = torch.tensor([[9707, 11, 1879, 0, 101059, 15322, 102, 3837, 1234]])
    gguf_model = AutoModelForCausalLM.from_pretrained(str(llama_f16.gguf.parent), gguf_file=llama_f16.gguf.name,
                                                      dtype=torch.float32)
    merged = AutoModelForCausalLM.from_pretrained(str(llama_reference["merged"]), dtype=torch.float32)
    with torch.no_grad():
        a = merged(ids).logits[0].double().numpy()
        b = gguf_model(ids).logits[0].double().numpy()
    kl, top1 = compare(a, b)
    assert kl < 1e-4
    assert top1 == 1.0


def test_q4_gguf_loads_in_llama_cpp(qwen2_q4) -> None:
    from llama_cpp import Llama

    llm = Llama(model_path=str(qwen2_q4.gguf), n_ctx=128, verbose=False)
    try:
        out = llm.create_completion("日本の首都は", max_tokens=4, temperature=0.0)
        assert out["choices"][0]["text"] == qwen2_q4.fidelity["sample"][: len(out["choices"][0]["text"])]
    finally:
        llm.close()
