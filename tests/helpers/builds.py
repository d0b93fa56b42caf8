"""Build-pipeline fixtures shared through tests/conftest.py: each tiny GGUF is built once per session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["build_config", "build_home", "llama_f16", "llama_reference", "qwen2_q4", "qwen2_reference",
           "tiny_llama_adapter", "tiny_qwen2_gguf"]


@pytest.fixture(scope="session")
def build_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session config file whose models.output_dir holds every session build (so rebuilds are cache hits)."""
    from lorag.config import init_config

    home = tmp_path_factory.mktemp("build-home")
    init_config(home / "lorag.yaml")
    return home


@pytest.fixture
def build_config(build_home: Path, tmp_path: Path) -> Iterator[Path]:
    """A per-test copy of the session config (tests may update or lock it), sharing the session output dir."""
    text = (build_home / "lorag.yaml").read_text(encoding="utf-8")
    out = (build_home / ".lorag" / "models").as_posix()
    path = tmp_path / "lorag.yaml"
    path.write_text(text.replace("output_dir: .lorag/models", f"output_dir: {out}"), encoding="utf-8")
    yield path
    if path.exists():
        path.chmod(0o644)


@pytest.fixture(scope="session")
def qwen2_q4(tiny_qwen2: Path, tiny_qwen2_adapter: Path, build_home: Path):  # type: ignore[no-untyped-def]
    """lorag's Q4_K_M merge build of the tiny Qwen2 fine-tune."""
    from lorag.build.pipeline import BuildRequest, run_build
    from lorag.config import load_config

    events: list[dict] = []
    result = run_build(load_config(build_home / "lorag.yaml"),
                       BuildRequest(lora_path=tiny_qwen2_adapter, base=tiny_qwen2, name="tiny-qwen2"),
                       progress=events.append)
    result.events = events  # type: ignore[attr-defined]
    return result


@pytest.fixture(scope="session")
def tiny_llama_adapter(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An r=4 rsLoRA on the attention projections of ``tiny_llama`` (different settings from the Qwen2 one)."""
    from tests.helpers.tiny import make_tiny_adapter

    return make_tiny_adapter(tiny_llama, tmp_path_factory.mktemp("adapters") / "lora-tiny-llama", r=4, alpha=8,
                             targets=("q_proj", "k_proj", "v_proj", "o_proj"), use_rslora=True, seed=5)


@pytest.fixture(scope="session")
def llama_f16(tiny_llama: Path, tiny_llama_adapter: Path, build_home: Path):  # type: ignore[no-untyped-def]
    """lorag's F16 merge build of the tiny Llama fine-tune."""
    from lorag.build.pipeline import BuildRequest, run_build
    from lorag.config import load_config

    return run_build(load_config(build_home / "lorag.yaml"),
                     BuildRequest(lora_path=tiny_llama_adapter, base=tiny_llama, name="tiny-llama", quantization="F16"))


def reference_route(base: Path, adapter: Path, out: Path, qtype: str | None) -> dict[str, Path]:
    """llama.cpp's documented route: PEFT merge_and_unload → save → convert_hf_to_gguf.py → quantize.

    The PEFT merge runs in fp32 and is cast back to the base dtype, the arithmetic lorag promises (W + s·B·A in
    fp32, stored in the base dtype), so identical merged inputs must give identical GGUFs.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from lorag.build.convert import ensure_converters

    merged = out / "merged"
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    saved = json.loads((base / "config.json").read_text())
    dtype = getattr(torch, saved.get("dtype") or saved.get("torch_dtype") or "float32")
    model = PeftModel.from_pretrained(model, adapter).merge_and_unload().to(dtype)
    model.save_pretrained(merged)
    for entry in base.iterdir():  # the fine-tune's tokenizer files exactly as they are (no re-save)
        if entry.is_file() and not entry.name.endswith(".safetensors") and not (merged / entry.name).exists():
            shutil.copy2(entry, merged / entry.name)
    tree = ensure_converters()
    f16 = out / "ref-F16.gguf"
    subprocess.run([sys.executable, str(tree / "convert_hf_to_gguf.py"), str(merged), "--outtype", "f16",
                    "--outfile", str(f16)], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(tree / "gguf-py")})
    paths = {"merged": merged, "F16": f16}
    if qtype:
        import ctypes

        import llama_cpp

        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype}")
        params.nthread = 2
        paths[qtype] = out / f"ref-{qtype}.gguf"
        assert llama_cpp.llama_model_quantize(str(f16).encode(), str(paths[qtype]).encode(), ctypes.byref(params)) == 0
    return paths


@pytest.fixture(scope="session")
def qwen2_reference(tiny_qwen2: Path, tiny_qwen2_adapter: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return reference_route(tiny_qwen2, tiny_qwen2_adapter, tmp_path_factory.mktemp("ref-qwen2"), "Q4_K_M")


@pytest.fixture(scope="session")
def llama_reference(tiny_llama: Path, tiny_llama_adapter: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return reference_route(tiny_llama, tiny_llama_adapter, tmp_path_factory.mktemp("ref-llama"), None)


@pytest.fixture(scope="session")
def tiny_qwen2_gguf(tiny_qwen2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_qwen2 as an F16 GGUF by llama.cpp's own converter (tests/generate, tests/inspect)."""
    from tests.generate.gguf_helpers import convert_hf

    return convert_hf(tiny_qwen2, tmp_path_factory.mktemp("gguf") / "tiny-qwen2-f16.gguf")
