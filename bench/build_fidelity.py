"""Stage timings, size and fidelity per quantization type for run_build on a tiny Qwen2 fine-tune.

    python bench/build_fidelity.py [--types F16,Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q4_K_S] [--workdir DIR]
    python bench/build_fidelity.py --lora-path examples/adapter --base ~/.cache/lorag/models/gemma-3-270m-hf
    python bench/build_fidelity.py --route-choice [--lora-path DIR --base DIR] [--types Q4_K_M] [--eval-prompts F]

One row per quantization type (stage seconds, size, mean KL vs the unquantized fine-tune, top-1 agreement),
then a cache hit and llama.cpp's own route (PEFT merge_and_unload → convert_hf_to_gguf.py → quantize)
measured in the same run. Not a test: it never fails on timing.

``--route-choice`` builds both candidates (``--mode auto``: Q4_K_M base + GGUF LoRA, and merged) of an adapter
(default: the bundled Gemma 3 270M one, examples/adapter) and prints the route-choice table: candidate, KL, top-1,
greedy agreement on the held-out prompts, identical answers, chosen, why; then each candidate's least faithful
answers and what the behaviour score cost (reference answers once, each candidate's teacher-forced pass).
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
    parser.add_argument("--route-choice", action="store_true", help="build both candidates, print the rule's table")
    parser.add_argument("--eval-prompts", type=Path, default=None, help="held-out prompts for --route-choice")
    args = parser.parse_args()
    if args.route_choice:
        route_choice(args)
        return
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


def route_choice(args: argparse.Namespace) -> None:
    """Build both candidates per type in auto mode and print the route rule's table."""
    import os

    from lorag.build.pipeline import BuildRequest, run_build
    from lorag.config import init_config, load_config, update_config

    root = Path(__file__).resolve().parent.parent
    adapter = (args.lora_path or root / "examples" / "adapter").absolute()
    base = (args.base or Path.home() / ".cache" / "lorag" / "models" / "gemma-3-270m-hf").expanduser().absolute()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lorag-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "lorag.yaml").exists():
        init_config(work / "lorag.yaml")
    update_config(work / "lorag.yaml", {"models.output_dir": str(work / "models")})
    config = load_config(work / "lorag.yaml")
    types = args.types if args.types != ALL_TYPES else "Q4_K_M"
    print(f"adapter {adapter}, base {base}; {os.cpu_count()} cores, load {_load()}")
    for qtype in types.split(","):
        started = time.monotonic()
        result = run_build(config, BuildRequest(lora_path=adapter, base=base, quantization=qtype, name="bench",
                                                mode="auto", eval_prompts=args.eval_prompts))
        total = time.monotonic() - started
        choice = result.route_choice
        beh = result.behaviour
        print(f"\n{qtype}: route choice (rule: greedy agreement within {choice['tolerance']:.2f} of the best, "
              f"then lowest KL); {total:.1f} s for both builds, load {_load()}")
        print(f"held-out prompts: {'generic built-in set' if beh.get('generic') else beh.get('source')}, "
              f"{beh.get('prompts')} prompts, up to {beh.get('max_new_tokens')} new tokens; "
              f"reference: {beh.get('reference')}")
        print(f"{'candidate':10}{'KL':>9}{'top-1':>7}{'agreement':>11}{'identical':>11}{'chosen':>8}  why")
        for row in choice["candidates"]:
            kl = f"{row['kl_mean']:.4f}" if row.get("kl_mean") is not None else "-"
            top1 = f"{row['top1']:.2f}" if row.get("top1") is not None else "-"
            agree = f"{row['agreement']:.3f}" if row.get("agreement") is not None else "-"
            same = f"{row['exact']}/{row['prompts']}" if row.get("exact") is not None else "-"
            print(f"{row['name']:10}{kl:>9}{top1:>7}{agree:>11}{same:>11}{'yes' if row['chosen'] else '':>8}  "
                  f"{row['reason']}")
        for row in choice["candidates"]:
            _print_answers(row)


def _print_answers(row: dict[str, object]) -> None:
    import json

    gguf = Path(str(row["gguf"]))
    record = json.loads((gguf.parent / "build.json").read_text(encoding="utf-8"))
    behaviour = record["fidelity"].get("behaviour") or {}
    cost = behaviour.get("seconds") or {}
    verify = record["build_stages"].get("verify", 0)
    print(f"\n{row['name']}: behaviour score cost {cost.get('reference', 0):.1f} s reference answers + "
          f"{cost.get('candidate', 0):.1f} s this candidate (verify stage {verify:.1f} s"
          f"{', cached build' if row.get('cache_hit') else ''})")
    for answer in behaviour.get("answers", []):
        mark = "=" if answer["agreement"] == 1.0 else f"{answer['agreement']:.2f}"
        print(f"  [{mark:>4}] fine-tune: {answer['reference']}")
        if answer["agreement"] != 1.0:
            print(f"         {row['name']:>9}: {answer['candidate']}")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def _reference(base: Path, adapter: Path, work: Path) -> float:
    from tests.helpers.builds import reference_route

    out = work / "reference"
    out.mkdir(exist_ok=True)
    started = time.monotonic()
    reference_route(base, adapter, out, "Q4_K_M")
    return time.monotonic() - started


if __name__ == "__main__":
    main()
