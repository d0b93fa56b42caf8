"""Stage timings, size and fidelity per quantization type for run_build on a tiny Qwen2 fine-tune.

    python bench/build_fidelity.py [--types F16,Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q4_K_S] [--workdir DIR]
    python bench/build_fidelity.py --lora-path examples/adapter --base ~/.cache/lorag/models/gemma-3-270m-hf

One row per quantization type (stage seconds, size, mean KL vs the unquantized fine-tune, top-1 agreement),
then a cache hit and llama.cpp's own route (PEFT merge_and_unload → convert_hf_to_gguf.py → quantize)
measured in the same run. Not a test: it never fails on timing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ALL_TYPES = "F16,Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q4_K_S"
STAGES = ("validate", "single_pass", "merge", "convert", "quantize", "verify")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default=ALL_TYPES)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--lora-path", type=Path, default=None, help="a real adapter instead of the tiny one")
    parser.add_argument("--base", type=Path, default=None, help="its base model directory")
    parser.add_argument("--no-reference", action="store_true", help="skip llama.cpp's route")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lorag-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    from lorag.build.pipeline import BuildRequest, run_build
    from lorag.config import init_config, load_config
    from tests.helpers.tiny import make_tiny_adapter, make_tiny_model

    base, adapter = work / "tiny-qwen2", work / "lora"
    if args.lora_path is not None:
        base, adapter = args.base.expanduser().absolute(), args.lora_path.absolute()
    elif not (adapter / "adapter_config.json").exists():
        make_tiny_model(base)
        make_tiny_adapter(base, adapter)
    if not (work / "lorag.yaml").exists():
        init_config(work / "lorag.yaml")
    config = load_config(work / "lorag.yaml")
    print(f"{'type':8}" + "".join(f"{s:>10}" for s in STAGES) + f"{'total s':>10}{'MB':>8}{'KL':>10}{'top1':>7}")
    for qtype in args.types.split(","):
        started = time.monotonic()
        result = run_build(config, BuildRequest(lora_path=adapter, base=base, quantization=qtype, name="bench"))
        total = time.monotonic() - started
        cells = "".join(f"{result.stages.get(s, 0.0):>10.2f}" for s in STAGES)
        fid = result.fidelity
        kl = f"{fid['kl_mean']:.2e}" if fid.get("kl_mean") is not None else "-"
        top1 = f"{fid['top1']:.2f}" if fid.get("top1") is not None else "-"
        print(f"{qtype:8}{cells}{total:>10.2f}{result.size_bytes / 1e6:>8.1f}{kl:>10}{top1:>7}", flush=True)
    started = time.monotonic()
    run_build(config, BuildRequest(lora_path=adapter, base=base, quantization="Q4_K_M", name="bench"))
    print(f"cache hit (Q4_K_M again, in process): {time.monotonic() - started:.3f} s")
    if not args.no_reference:
        print(f"llama.cpp route Q4_K_M (PEFT merge, convert, quantize; no verify): "
              f"{_reference(base, adapter, work):.2f} s")


def _reference(base: Path, adapter: Path, work: Path) -> float:
    from tests.helpers.builds import reference_route

    out = work / "reference"
    out.mkdir(exist_ok=True)
    started = time.monotonic()
    reference_route(base, adapter, out, "Q4_K_M")
    return time.monotonic() - started


if __name__ == "__main__":
    main()
