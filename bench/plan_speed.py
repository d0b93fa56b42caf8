"""How long planning a GGUF takes: lorag's header reader against gguf.GGUFReader (the reference) in the same run.

Usage::

    python bench/plan_speed.py                 # the bundled Gemma 3 270M Q4_K_M GGUF (253 MB, 262k vocabulary)
    python bench/plan_speed.py --gguf model.gguf --repeat 3
"""

from __future__ import annotations

import argparse
import math
import resource
import time
from pathlib import Path
from typing import Any


def reference(path: Path) -> dict[str, Any]:
    """What the planner needs, read with gguf.GGUFReader (memory-maps the file, parses every field)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    return {"tensors": len(reader.tensors), "n_params": sum(int(t.n_elements) for t in reader.tensors),
            "types": sorted({t.tensor_type.name for t in reader.tensors})}


def lorag_header(path: Path) -> dict[str, Any]:
    """The same numbers from lorag.inspect.model.inspect_gguf (header and tensor directory only)."""
    from lorag.inspect.model import inspect_gguf

    info = inspect_gguf(path)
    return {"tensors": len(info.gguf_tensors), "n_params": info.n_params,
            "types": sorted({t for _, t, _ in info.gguf_tensors})}


def plan(path: Path) -> dict[str, Any]:
    """Inspect and plan on pretend hardware, as `lorag model plan` does (without probing this machine)."""
    from lorag.inspect.hardware import pretend_hardware
    from lorag.inspect.model import inspect_gguf
    from lorag.inspect.placement import plan_model

    chosen = plan_model(inspect_gguf(path), pretend_hardware(0, 16 * 10**9)).choice
    return {"chosen": chosen.label() if chosen else None}


def timed(fn: Any, path: Path, repeat: int) -> tuple[float, float, Any]:
    """Best wall time and CPU time of ``repeat`` calls, and the last result."""
    best_wall = best_cpu = math.inf
    result = None
    for _ in range(repeat):
        cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        result = fn(path)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        best_wall = min(best_wall, time.perf_counter() - wall0)
        best_cpu = min(best_cpu, cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime)
    return best_wall, best_cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, help="GGUF file (default: the bundled Gemma 3 270M)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.gguf is None:
        from lorag.generate.llamacpp import bundled_model_path

        args.gguf = bundled_model_path()
    rows = [("gguf.GGUFReader (reference)", reference), ("lorag header reader", lorag_header),
            ("lorag inspect + plan", plan)]
    print(f"{args.gguf.name}: {args.gguf.stat().st_size / 1e6:.0f} MB, best of {args.repeat}")
    print(f"{'reader':<30}{'wall s':>9}{'CPU s':>9}  result")
    results = {}
    for name, fn in rows:
        wall, cpu, result = timed(fn, args.gguf, args.repeat)
        results[name] = result
        print(f"{name:<30}{wall:>9.2f}{cpu:>9.2f}  {result}")
    same = results["gguf.GGUFReader (reference)"] == results["lorag header reader"]
    print("same tensors, parameters and types as the reference:", "yes" if same else "NO")


if __name__ == "__main__":
    main()
