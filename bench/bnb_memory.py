"""Measured vs predicted GPU memory for the transformers backend in bitsandbytes 4-bit / 8-bit (and bf16).

Builds random Qwen2 models of real shapes from a config on the GPU machine (no downloads), saves them, loads
them through lorag's transformers backend (`lorag.generate.transformers.load_model`, BitsAndBytesConfig),
generates, and compares torch.cuda.max_memory_allocated with lorag.inspect.memory's prediction.

    python bench/bnb_memory.py --dry-run                       # predictions only (any machine)
    python bench/bnb_memory.py --models 1.5b,3b --precisions 4bit,8bit,bf16   # on a CUDA machine
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # keep the table clean

from lorag.inspect.memory import kv_cache_bytes, overhead_bytes, weights_bytes
from lorag.inspect.model import inspect_hf

# Published shapes of Qwen2.5 models (tied embeddings below 7B).
SHAPES: dict[str, dict[str, Any]] = {
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, tie_word_embeddings=True),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, tie_word_embeddings=True),
    "3b": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
               num_key_value_heads=2, tie_word_embeddings=True),
    "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, tie_word_embeddings=False),
}
TOLERANCE = 0.10


def qwen2_config(name: str) -> dict[str, Any]:
    """A Qwen2 config.json dict of the named shape."""
    return {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936,
            "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "torch_dtype": "bfloat16", "bos_token_id": 151643, "eos_token_id": 151645, **SHAPES[name]}


def write_config(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(qwen2_config(name)), encoding="utf-8")
    return directory


def predict(model_dir: Path, precision: str, tokens: int) -> dict[str, int]:
    """lorag's prediction: weights, KV cache for ``tokens`` and working memory."""
    info = inspect_hf(model_dir)
    return {"weights": weights_bytes(info, precision), "kv": kv_cache_bytes(info, tokens),
            "overhead": overhead_bytes(info, precision, tokens)}


def build_random_model(directory: Path, name: str) -> Path:
    """Random bf16 weights of the named shape, initialised on the GPU and saved as safetensors."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    write_config(directory, name)
    config = AutoConfig.from_pretrained(directory)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(directory, safe_serialization=True)
    del model
    _release()
    return directory


def _release() -> None:
    """Free the previous model for real: generate() leaves reference cycles that only the collector breaks."""
    import torch

    gc.collect()
    torch.cuda.empty_cache()


def measure(model_dir: Path, precision: str, prompt_tokens: int, new_tokens: int) -> dict[str, int]:
    """Load through lorag's transformers backend, generate, and return allocated bytes after load and at peak."""
    import torch
    from transformers.utils import logging as hf_logging

    from lorag.generate.transformers import load_model

    hf_logging.disable_progress_bar()
    _release()
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    quant = precision if precision in ("4bit", "8bit") else "none"
    model = load_model(model_dir, quantization=quant, dtype="bfloat16")
    loaded = torch.cuda.memory_allocated() - start
    torch.cuda.reset_peak_memory_stats()
    ids = torch.randint(0, 151000, (1, prompt_tokens), device="cuda")
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    peak = torch.cuda.max_memory_allocated() - start
    del model
    _release()
    return {"loaded": loaded, "peak": peak}


def gb(n: float) -> str:
    return f"{n / 1e9:7.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="1.5b,3b", help=f"comma-separated shapes: {', '.join(SHAPES)}")
    parser.add_argument("--precisions", default="4bit,8bit,bf16", help="comma-separated: 4bit, 8bit, bf16")
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--dry-run", action="store_true", help="print predictions only (no GPU needed)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the random models")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = [m for m in models if m not in SHAPES] + [p for p in precisions if p not in ("4bit", "8bit", "bf16")]
    if unknown:
        parser.error(f"unknown model shape or precision: {', '.join(unknown)}")
    return run(models, precisions, args.prompt_tokens, args.new_tokens, args.dry_run, args.workdir)


def run(models: list[str], precisions: list[str], prompt_tokens: int, new_tokens: int, dry_run: bool,
        workdir: Path | None) -> int:
    tokens = prompt_tokens + new_tokens
    print(f"{'model':6} {'prec':5} {'pred weights':>12} {'meas loaded':>12} {'pred total':>11} {'meas peak':>10} "
          f"{'error':>7}  result   (GB = 1e9 bytes; {tokens} tokens in the KV cache)")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="bnb-bench-", dir=workdir) as tmp:
        for name in models:
            model_dir = Path(tmp) / name
            if dry_run:
                write_config(model_dir, name)
            else:
                t0 = time.perf_counter()
                build_random_model(model_dir, name)
                print(f"# built random Qwen2 {name} in {time.perf_counter() - t0:.1f} s", flush=True)
            for precision in precisions:
                pred = predict(model_dir, precision, tokens)
                total = sum(pred.values())
                if dry_run:
                    print(f"{name:6} {precision:5} {gb(pred['weights']):>12} {'-':>12} {gb(total):>11} {'-':>10}")
                    continue
                got = measure(model_dir, precision, prompt_tokens, new_tokens)
                error = (total - got["peak"]) / got["peak"]
                ok = abs(error) <= TOLERANCE
                failures += not ok
                print(f"{name:6} {precision:5} {gb(pred['weights']):>12} {gb(got['loaded']):>12} {gb(total):>11} "
                      f"{gb(got['peak']):>10} {100 * error:+6.1f}%  {'PASS' if ok else 'FAIL'}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
