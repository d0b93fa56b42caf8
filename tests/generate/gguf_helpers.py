"""Make real GGUFs in tests with llama.cpp's own converters and quantizer (the reference, not lorag's build code)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FTYPES = {"Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17}


def llama_cpp_dir() -> Path:
    """llama.cpp's converter tree ($LORAG_LLAMA_CPP_DIR or ~/.cache/lorag/llama.cpp-0.3.36); skip when absent."""
    d = Path(os.environ.get("LORAG_LLAMA_CPP_DIR") or Path.home() / ".cache" / "lorag" / "llama.cpp-0.3.36")
    if not (d / "convert_hf_to_gguf.py").exists():
        pytest.skip(f"llama.cpp converters not found at {d} (scripts/install.sh puts them there)")
    return d


def _run(script: str, *args: str) -> None:
    d = llama_cpp_dir()
    env = dict(os.environ, PYTHONPATH=str(d / "gguf-py"), HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, str(d / script), *args], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def convert_hf(model_dir: Path, out: Path, outtype: str = "f16") -> Path:
    """convert_hf_to_gguf.py MODEL --outtype f16 --outfile OUT."""
    if not out.exists():
        _run("convert_hf_to_gguf.py", str(model_dir), "--outtype", outtype, "--outfile", str(out))
    return out


def convert_lora(adapter_dir: Path, base_dir: Path, out: Path) -> Path:
    """convert_lora_to_gguf.py ADAPTER --base BASE --outtype f16 --outfile OUT."""
    if not out.exists():
        _run("convert_lora_to_gguf.py", str(adapter_dir), "--base", str(base_dir), "--outtype", "f16",
             "--outfile", str(out))
    return out


def quantize(src: Path, dst: Path, qtype: str) -> Path:
    """llama_cpp.llama_model_quantize (byte-identical to the llama-quantize tool)."""
    import llama_cpp

    if not dst.exists():
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = FTYPES[qtype]
        params.nthread = 2
        assert llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params) == 0
    return dst

