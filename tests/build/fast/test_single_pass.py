"""The single-pass build against the reference route (PEFT merge → convert_hf_to_gguf → llama.cpp quantize)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lorag.build.fast import FastPathUnsupported, build_gguf_single_pass, supports_fast_path


@pytest.fixture(autouse=True)
def _own_skeleton_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # one cache for this module's tests, never the user's ~/.cache
    root = tmp_path_factory.getbasetemp() / "fast-skeletons"
    monkeypatch.setenv("LORAG_FAST_CACHE", str(root))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reference_f16(base: Path, adapter: Path, work: Path, model_name: str | None = None) -> Path:
    """PEFT merge_and_unload → save_pretrained (+ tokenizer files and template) → convert_hf_to_gguf.py f16."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from lorag.build.convert import ensure_converters
    from lorag.build.workdir import stage_model_dir

    merged = work / "merged"
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    PeftModel.from_pretrained(model, adapter).merge_and_unload().save_pretrained(merged, safe_serialization=True)
    stage_model_dir(base, adapter, merged)  # the pipeline's tokenizer files and chat template, as in the build
    tree = ensure_converters()
    f16 = work / "ref-f16.gguf"
    name_args = ["--model-name", model_name] if model_name else []
    convert = tree / "convert_hf_to_gguf.py"
    env = {**os.environ, "PYTHONPATH": str(tree / "gguf-py")}
    subprocess.run([sys.executable, str(convert), str(merged), "--outtype", "f16", "--outfile", str(f16), *name_args],
                   cwd=tree, env=env, check=True, capture_output=True)
    return f16


def _reference_quantize(f16: Path, out: Path, qtype: str) -> Path:
    import ctypes

    llama_cpp = pytest.importorskip("llama_cpp")
    from lorag.build.fast.mixture import FTYPES

    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = 2
    params.ftype = FTYPES[qtype][1]
    assert llama_cpp.llama_model_quantize(str(f16).encode(), str(out).encode(), ctypes.byref(params)) == 0
    return out


@pytest.fixture(scope="module")
def tiny_llama_adapter(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.tiny import make_tiny_adapter

    return make_tiny_adapter(tiny_llama, tmp_path_factory.mktemp("adapters") / "lora-tiny-llama", seed=5)


@pytest.fixture(scope="module")
def reference_f16(tiny_qwen2: Path, tiny_qwen2_adapter: Path, tiny_llama: Path, tiny_llama_adapter: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("llama_cpp")
    out = {}
    for name, base, adapter in (("qwen2", tiny_qwen2, tiny_qwen2_adapter), ("llama", tiny_llama, tiny_llama_adapter)):
        out[name] = _reference_f16(base, adapter, tmp_path_factory.mktemp(f"ref-{name}"))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "qtype"), [("qwen2", "Q4_K_M"), ("qwen2", "Q8_0"), ("llama", "Q4_K_M"),
                                             ("llama", "Q5_K_M"), ("qwen2", "Q6_K"), ("qwen2", "F16")])
def test_fast_gguf_is_byte_identical_to_reference(arch: str, qtype: str, reference_f16: dict[str, Path],
                                                  request: pytest.FixtureRequest, tmp_path: Path) -> None:
    base = request.getfixturevalue(f"tiny_{arch}")
    adapter = request.getfixturevalue(f"tiny_{arch}_adapter")
    reference = _reference_quantize(reference_f16[arch], tmp_path / "ref.gguf", qtype)
    fast = tmp_path / "fast.gguf"
    stats = build_gguf_single_pass(base, adapter, fast, qtype, None, device="cpu")
    assert stats["size_bytes"] == reference.stat().st_size
    assert _sha(fast) == _sha(reference), _describe_difference(reference, fast)


@pytest.mark.slow
def test_fast_gguf_matches_reference_with_model_name_and_template(tiny_qwen2: Path, tmp_path: Path) -> None:
    """The pipeline passes --model-name and pins the fine-tune's chat template; the fast path does the same."""
    from tests.helpers.tiny import make_tiny_adapter

    template = "{% for m in messages %}<<{{ m['role'] }}>>{{ m['content'] }}{% endfor %}"
    adapter = make_tiny_adapter(tiny_qwen2, tmp_path / "lora", r=4, seed=9, chat_template=template)
    work = tmp_path / "ref"
    work.mkdir()
    f16 = _reference_f16(tiny_qwen2, adapter, work, model_name="my-finetune")
    assert template.encode() in f16.read_bytes()
    reference = _reference_quantize(f16, tmp_path / "ref.gguf", "Q8_0")
    fast = tmp_path / "fast.gguf"
    build_gguf_single_pass(tiny_qwen2, adapter, fast, "Q8_0", None, device="cpu", model_name="my-finetune")
    assert _sha(fast) == _sha(reference), _describe_difference(reference, fast)


@pytest.fixture(scope="module")
def tiny_gemma3(gemma3_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random 2-layer Gemma3ForCausalLM with the real Gemma 3 tokenizer (from the packaged 270M GGUF) + LoRA.

    The base is a copy of the session's ``gemma3_dirs["json"]`` (the same seed, config and tokenizer this
    fixture made itself before): copying saves loading the 262k-token vocabulary from the GGUF again.
    """
    import shutil

    from tests.helpers.tiny import make_tiny_adapter

    root = tmp_path_factory.mktemp("gemma3")
    base = root / "base"
    shutil.copytree(gemma3_dirs["json"], base, symlinks=True)
    return base, make_tiny_adapter(base, root / "lora", r=4)


@pytest.fixture(scope="module")
def gemma3_reference_f16(tiny_gemma3: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference route's F16 GGUF of the tiny Gemma 3 fine-tune, made once for every quantization below."""
    pytest.importorskip("llama_cpp")
    base, adapter = tiny_gemma3
    return _reference_f16(base, adapter, tmp_path_factory.mktemp("ref-gemma3"))


@pytest.mark.slow
@pytest.mark.parametrize("qtype", ["Q4_K_M", "Q8_0"])
def test_fast_gguf_gemma3_is_byte_identical(qtype: str, tiny_gemma3: tuple[Path, Path], gemma3_reference_f16: Path,
                                            tmp_path: Path) -> None:
    base, adapter = tiny_gemma3
    reference = _reference_quantize(gemma3_reference_f16, tmp_path / "ref.gguf", qtype)
    fast = tmp_path / "fast.gguf"
    build_gguf_single_pass(base, adapter, fast, qtype, None, device="cpu")
    assert _sha(fast) == _sha(reference), _describe_difference(reference, fast)


def _describe_difference(a: Path, b: Path) -> str:
    import numpy as np
    from gguf import GGUFReader

    ra, rb = GGUFReader(a), GGUFReader(b)
    lines = []
    for key in ra.fields:
        fa, fb = ra.fields[key], rb.fields.get(key)
        if fb is None or b"".join(p.tobytes() for p in fa.parts) != b"".join(p.tobytes() for p in fb.parts):
            lines.append(f"kv {key}")
    for ta, tb in zip(ra.tensors, rb.tensors, strict=False):
        if (ta.name, ta.tensor_type) != (tb.name, tb.tensor_type) or not np.array_equal(ta.data, tb.data):
            lines.append(f"tensor {ta.name} {ta.tensor_type.name} vs {tb.name} {tb.tensor_type.name}")
    return "; ".join(lines[:10]) or "headers differ"


@pytest.mark.slow
def test_second_build_reuses_the_metadata_and_stays_identical(tiny_qwen2: Path, tiny_qwen2_adapter: Path,
                                                               tmp_path: Path) -> None:
    first = build_gguf_single_pass(tiny_qwen2, tiny_qwen2_adapter, tmp_path / "a.gguf", "Q8_0", None, device="cpu")
    second = build_gguf_single_pass(tiny_qwen2, tiny_qwen2_adapter, tmp_path / "b.gguf", "Q8_0", None, device="cpu")
    other = build_gguf_single_pass(tiny_qwen2, tiny_qwen2_adapter, tmp_path / "c.gguf", "Q8_0", "{{ x }}",
                                   device="cpu")
    assert second["metadata_cached"] is True
    assert other["metadata_cached"] is False  # another chat template is another skeleton
    assert first["metadata_cached"] in (True, False)
    assert _sha(tmp_path / "a.gguf") == _sha(tmp_path / "b.gguf")
    assert b"{{ x }}" in (tmp_path / "c.gguf").read_bytes()


def test_supports_fast_path_names_the_native_architectures() -> None:
    assert supports_fast_path("Qwen2ForCausalLM")
    assert supports_fast_path("LlamaForCausalLM")
    assert supports_fast_path("Gemma3ForCausalLM")
    assert not supports_fast_path("MixtralForCausalLM")


def test_fast_path_refuses_modules_to_save(tiny_qwen2: Path, tmp_path: Path) -> None:
    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16,
                                                             "modules_to_save": ["lm_head"]}))
    with pytest.raises(FastPathUnsupported, match="plain LoRA only"):
        build_gguf_single_pass(tiny_qwen2, adapter, tmp_path / "out.gguf", "Q8_0", None, device="cpu")


def test_fast_path_refuses_unknown_quantization(tiny_qwen2: Path, tmp_path: Path) -> None:
    with pytest.raises(FastPathUnsupported, match="IQ2_XS"):
        build_gguf_single_pass(tiny_qwen2, None, tmp_path / "out.gguf", "IQ2_XS", None, device="cpu")
