"""Reference route vs single-pass fast route for building a quantized GGUF from base + LoRA, side by side.

Reference: merge LoRA shard by shard (lorag.build.merge) → convert_hf_to_gguf.py --outtype f16 →
llama.cpp quantize (the llama-quantize binary if given, else llama_cpp.llama_model_quantize).
Fast: lorag.build.fast.build_gguf_single_pass (one read of the base, no intermediate files).
Each stage runs as its own process so its wall time and peak RSS are its own; a sampler tracks the disk
space used under the work directory. Prints a table (and --json the summary).

    python bench/build_speed.py --base DIR --adapter DIR [--qtype Q4_K_M] [--device auto|cpu|cuda]
        [--work DIR] [--llama-quantize BIN] [--threads N] [--drop-caches] [--warm-run] [--fast-only]
        [--floor-around] [--exit prompt|normal] [--hash] [--json] [--json-out FILE]
The I/O floor is measured after the first fast build, or with --floor-around before each fast build and after the
last (each build then against the mean of the two next to it). Each fast run's own stats (stage times, metadata
source, busy profile) stay in WORK/fast-stats-{cold,warm}.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from build_checks import compare, disk_speeds  # noqa: E402


def _tree() -> Path:
    from lorag.build.convert import ensure_converters

    return ensure_converters()


# ---------------------------------------------------------------- stages (each runs in a child process)

def stage_merge(base: str, adapter: str, merged: str) -> None:
    from lorag.build.merge import load_adapter_weights, merge_model
    from lorag.build.progress import StageProgress
    from lorag.build.workdir import stage_model_dir

    out = Path(merged)
    stage_model_dir(Path(base), Path(adapter), out)
    merge_model(Path(base), load_adapter_weights(Path(adapter)), out, StageProgress(None, "merge"))


def stage_quantize_py(f16: str, out: str, ftype: int, threads: int) -> None:
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = threads
    params.ftype = ftype
    if llama_cpp.llama_model_quantize(f16.encode(), out.encode(), ctypes.byref(params)) != 0:
        raise SystemExit("llama_model_quantize failed")


def stage_fast(base: str, adapter: str, out: str, qtype: str, device: str, threads: int, stats: str,
               exit_how: str) -> None:
    entered = time.monotonic()
    from lorag.build.fast import preload

    preload.start()  # first, as the lorag command's build does (lorag.cli.build.run_build_command)
    from lorag.build.fast import build_gguf_single_pass
    from lorag.cli.leave import leave

    imported = time.monotonic()
    result = build_gguf_single_pass(Path(base), Path(adapter), Path(out), qtype, None, device=device, threads=threads)
    # system-wide monotonic stamps: the parent adds its own around the process, and so sees its start and exit
    result["process"] = {"entered": entered, "imported": imported, "returned": time.monotonic()}
    Path(stats).write_text(json.dumps(result), encoding="utf-8")
    if exit_how == "prompt":  # as the `lorag` command and the build script leave their process
        leave(0)


STAGES = {"merge": stage_merge, "quantize_py": stage_quantize_py, "fast": stage_fast}


# ---------------------------------------------------------------- measuring

def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def run_stage(name: str, argv: list[str], work: Path, reads: int, writes_to: list[Path]) -> dict[str, Any]:
    """Run one stage as a child process; wall time, peak RSS (wait4), peak disk used under ``work``."""
    base_disk = _dir_bytes(work)
    peak = [base_disk]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], _dir_bytes(work))

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler.start()
    assert proc.stdout is not None
    tail = proc.stdout.read().decode(errors="replace").splitlines()[-15:]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    peak[0] = max(peak[0], _dir_bytes(work))
    if os.waitstatus_to_exitcode(status) != 0:
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"stage {name} failed")
    print(f"[{name}] {seconds:.1f} s, peak RSS {usage.ru_maxrss / 1e6:.2f} GB, peak extra disk "
          f"{(peak[0] - base_disk) / 1e9:.2f} GB", flush=True)
    written = sum(_dir_bytes(p) if p.is_dir() else p.stat().st_size for p in writes_to if p.exists())
    return {"stage": name, "seconds": seconds, "read": reads, "written": written,
            "peak_rss": usage.ru_maxrss * 1024, "peak_extra_disk": peak[0] - base_disk,
            "started": started, "ended": started + seconds}


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(16 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _self(stage: str, *args: Any) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--stage", stage, "--stage-args", json.dumps(list(args))]


def drop_caches() -> bool:
    """Empty the page cache (root only), so each route reads its input from the disk."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- main

def _gb(n: float) -> str:
    return f"{n / 1e9:7.2f} GB"


def print_table(rows: list[dict[str, Any]], floor: dict[str, Any]) -> None:
    print(f"{'route/stage':<28}{'seconds':>9}{'read':>12}{'written':>12}{'peak RSS':>12}{'peak extra disk':>17}")
    for r in rows:
        print(f"{r['stage']:<28}{r['seconds']:9.1f}{_gb(r['read']):>12}{_gb(r['written']):>12}"
              f"{_gb(r['peak_rss']):>12}{_gb(r['peak_extra_disk']):>17}")
    print(f"{'I/O floor (read in + write out)':<28}{floor['io_floor_s']:9.1f}   "
          f"read {floor['read_Bps'] / 1e9:.2f} GB/s ({floor['read_mode']}), write {floor['write_Bps'] / 1e9:.2f} GB/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage")
    ap.add_argument("--stage-args")
    ap.add_argument("--base", type=Path)
    ap.add_argument("--adapter", type=Path)
    ap.add_argument("--qtype", default="Q4_K_M")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work", type=Path, default=Path("bench-work"))
    ap.add_argument("--llama-quantize", type=Path)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--drop-caches", action="store_true", help="empty the page cache before each route (root)")
    ap.add_argument("--floor-sample", type=int, default=4 << 30, help="bytes to read/write for the disk speeds")
    ap.add_argument("--rmse-sample", type=int, default=6)
    ap.add_argument("--warm-run", action="store_true", help="also time a second fast build (cached metadata)")
    ap.add_argument("--fast-only", action="store_true",
                    help="skip the reference route (for inputs whose intermediate files do not fit the disk)")
    ap.add_argument("--exit", choices=["prompt", "normal"], default="prompt",
                    help="how a fast build's process ends: as the lorag command does (default), or the interpreter's "
                         "full teardown")
    ap.add_argument("--floor-around", action="store_true",
                    help="measure the I/O floor before each fast build and after the last; each build's ratio uses "
                         "the mean of the floors on either side of it (the disk's speed moves between minutes)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--hash", action="store_true", help="record the fast output's SHA-256 (compare across versions)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    if args.stage:
        STAGES[args.stage](*json.loads(args.stage_args))
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    from lorag.build.fast.reader import index_model

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    base_bytes = sum(loc.nbytes for loc in index_model(args.base).values())
    inputs = base_bytes + (args.adapter / "adapter_model.safetensors").stat().st_size
    f16, ref_out, fast_out = work / "ref-f16.gguf", work / "ref.gguf", work / "fast.gguf"
    summary: dict[str, Any] = {"cpu_count": os.cpu_count()}
    # A metadata cache of our own, empty at the start: the first fast run derives the metadata (cold).
    import shutil

    shutil.rmtree(work / "skeleton-cache", ignore_errors=True)
    os.environ["LORAG_FAST_CACHE"] = str(work / "skeleton-cache")
    # The fast route first: on a time-limited machine its numbers are the ones that must come back.
    shards = sorted({loc.path for loc in index_model(args.base).values()})
    speeds: list[tuple[float, float, str]] = []  # the disk's (read, write, how), measured around the builds
    if args.floor_around:
        speeds.append(_disk(shards, args, work))
    cold = drop_caches() if args.drop_caches else False
    fast, fast_stats = _fast_run(args, "fast: single pass (cold)", fast_out, work / "fast-stats-cold.json", inputs)
    print(f"page cache dropped before each route: {cold}", flush=True)
    out_bytes = fast_out.stat().st_size
    speeds.append(_disk(shards, args, work))
    floor = _floor(base_bytes, out_bytes, speeds[-1])
    print(f"I/O floor {floor['io_floor_s']:.1f} s", flush=True)
    summary.update({"fast_s": round(fast["seconds"], 2), "io_floor_s": round(floor["io_floor_s"], 2),
                    "output_bytes": out_bytes, "fast_peak_extra_disk_bytes": fast["peak_extra_disk"],
                    "fast_peak_rss_bytes": fast["peak_rss"], "device": fast_stats["device"],
                    "fast_profile": fast_stats, "floor": floor})
    _save(args, summary)
    rows, stats = [fast], [fast_stats]
    if args.warm_run:  # the same build again: metadata from the cache (a new adapter on the same base hits it too)
        if args.drop_caches:
            drop_caches()
        warm, warm_stats = _fast_run(args, "fast: warm (metadata cached)", fast_out, work / "fast-stats-warm.json",
                                     inputs)
        rows.append(warm)
        stats.append(warm_stats)
        summary.update({"fast_cached_metadata_s": round(warm["seconds"], 2), "fast_warm_profile": warm_stats,
                        "fast_warm_peak_rss_bytes": warm["peak_rss"]})
        if args.floor_around:
            speeds.append(_disk(shards, args, work))
        _save(args, summary)
    floors = [_floor(base_bytes, out_bytes, sp)["io_floor_s"] for sp in speeds]
    # each build against the floor measured next to it: the mean of the one before and the one after
    for i, row in enumerate(rows):
        row["floor_s"] = (floors[i] + floors[i + 1]) / 2 if args.floor_around else floor["io_floor_s"]
    summary["floors_s"] = [round(f, 2) for f in floors]
    if args.fast_only:
        print_table(rows, floor)
        _print_ratios(rows, stats, floors, args.floor_around)
        summary["stages"] = rows
        if args.hash:
            summary["fast_sha256"] = _sha256(fast_out)
            print(f"fast output SHA-256 {summary['fast_sha256']}", flush=True)
        _finish(args, summary, [ref_out, fast_out])
        return
    ref_rows = run_reference(args, work, inputs, f16, ref_out)
    ref_total = ref_rows[-1]["seconds"]
    check = compare(ref_out, fast_out, f16, args.rmse_sample)
    print_table(ref_rows + rows, floor)
    print(f"ratio reference/fast: {ref_total / fast['seconds']:.2f}x; fast vs I/O floor: "
          f"{fast['seconds'] / floor['io_floor_s']:.2f}x; identical: {check['identical']}, same header: "
          f"{check['same_header']}, tensors with different bytes: {check['tensors_with_different_bytes']}")
    for r in check.get("rmse_vs_f16", []):
        print(f"  {r['tensor']:<28}{r['type']:>6}  rmse llama.cpp {r['rmse_llama_cpp']:.6g}  fast {r['rmse_fast']:.6g}"
              f"  bytes differ {100 * r['bytes_differ']:.2f}%")
    summary.update({"reference_s": round(ref_total, 2), "ratio": round(ref_total / fast["seconds"], 2),
                    "identical": check["identical"], "same_header": check["same_header"], "stages": ref_rows + rows,
                    "rmse_vs_f16": check.get("rmse_vs_f16", [])})
    _finish(args, summary, [f16, ref_out, fast_out])


def _disk(shards: list[Path], args: argparse.Namespace, work: Path) -> tuple[float, float, str]:
    # Dirty pages first: the kernel writes a just-written model (or build output) back for a minute or more, and
    # that writeback would share the disk with the measurement (device runs 27-29: the first floor 1.5x the others).
    os.sync()
    read_bps, write_bps, how = disk_speeds(shards, args.floor_sample, work)
    print(f"disk: read {read_bps / 1e9:.2f} GB/s ({how}), write {write_bps / 1e9:.2f} GB/s", flush=True)
    return read_bps, write_bps, how


def _floor(base_bytes: int, out_bytes: int, speeds: tuple[float, float, str]) -> dict[str, Any]:
    """The time to read the base once and write the output once at the measured speeds."""
    read_bps, write_bps, how = speeds
    return {"io_floor_s": base_bytes / read_bps + out_bytes / write_bps, "read_Bps": read_bps, "write_Bps": write_bps,
            "read_mode": how}


def _print_ratios(rows: list[dict[str, Any]], stats: list[dict[str, Any]], floors: list[float], around: bool) -> None:
    if around:
        print("I/O floors around the builds: " + ", ".join(f"{f:.1f} s" for f in floors))
    labels = ["cold", "warm"][:len(rows)]
    print("fast vs I/O floor" + (" (each against the mean of the floors before and after it)" if around else "")
          + ": " + ", ".join(f"{r['seconds'] / r['floor_s']:.2f}x ({lab})"
                             for r, lab in zip(rows, labels, strict=True)))
    ready = [r["seconds"] - s.get("outside", {}).get("exit", 0.0) for r, s in zip(rows, stats, strict=True)]
    print("until the output is in place (before the process's exit): "
          + ", ".join(f"{t / r['floor_s']:.2f}x" for t, r in zip(ready, rows, strict=True)), flush=True)


def _fast_run(args: argparse.Namespace, label: str, out: Path, stats_file: Path,
              inputs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """One single-pass build in its own process; its row and the build's own stats (profile, metadata source)."""
    row = run_stage(label, _self("fast", str(args.base), str(args.adapter), str(out), args.qtype, args.device,
                                 args.threads, str(stats_file), args.exit), args.work.resolve(), inputs, [out])
    stats: dict[str, Any] = json.loads(stats_file.read_text())
    stats["outside"] = _outside(row, stats)
    stats_file.write_text(json.dumps(stats), encoding="utf-8")
    print(f"{label} inside: {json.dumps(stats['stages'])} metadata {stats.get('metadata_source')} busy "
          f"{json.dumps(stats['profile'])} device {stats['device']} (stats kept in {stats_file})", flush=True)
    print(f"{label} outside the build: {json.dumps(stats['outside'])}", flush=True)
    for qtype, entry in sorted(stats.get("quantize_by_type", {}).items()):
        print(f"  quantize {qtype}: {entry['tensors']} tensors, {entry['weights'] / 1e9:.2f} G weights, "
              f"{entry['seconds']:.2f} s ({entry['weights'] / max(entry['seconds'], 1e-9) / 1e9:.2f} G/s)", flush=True)
    return row, stats


def _outside(row: dict[str, Any], stats: dict[str, Any]) -> dict[str, float]:
    """Where the process's wall time went besides the build: interpreter start (with this script's imports), lorag's
    imports, and after the build (stats written, interpreter and CUDA teardown)."""
    stamps = stats.get("process")
    if not stamps:
        return {}
    build_start = stamps["returned"] - stats["seconds"]
    return {"python_start": round(stamps["entered"] - row["started"], 3),
            "lorag_imports": round(stamps["imported"] - stamps["entered"], 3),
            "before_build": round(build_start - stamps["imported"], 3),
            "exit": round(row["ended"] - stamps["returned"], 3)}


def _finish(args: argparse.Namespace, summary: dict[str, Any], outputs: list[Path]) -> None:
    _save(args, summary)
    if args.json:
        keys = ("reference_s", "fast_s", "fast_cached_metadata_s", "ratio", "io_floor_s", "output_bytes",
                "fast_peak_extra_disk_bytes", "fast_peak_rss_bytes", "identical")
        print(json.dumps({k: summary[k] for k in keys if k in summary}))
    if not args.keep:  # the GGUFs are large; the stats files stay
        for p in outputs:
            p.unlink(missing_ok=True)


def run_reference(args: argparse.Namespace, work: Path, inputs: int, f16: Path, ref_out: Path) -> list[dict[str, Any]]:
    """merge+save → convert f16 → quantize, each timed; the merged copy is deleted once converted."""
    import shutil

    from lorag.build.fast.mixture import FTYPES

    merged = work / "merged"
    if args.drop_caches:
        drop_caches()
    rows = [run_stage("reference: merge+save", _self("merge", str(args.base), str(args.adapter), str(merged)),
                      work, inputs, [merged])]
    rows.append(run_stage("reference: convert f16", [sys.executable, str(_tree() / "convert_hf_to_gguf.py"),
                          str(merged), "--outtype", "f16", "--outfile", str(f16)], work, _dir_bytes(merged), [f16]))
    merged_disk = _dir_bytes(merged)
    shutil.rmtree(merged, ignore_errors=True)  # disk room on the device; the F16 GGUF stays for the RMSE check
    quant_cmd = ([str(args.llama_quantize), str(f16), str(ref_out), args.qtype, str(args.threads)]
                 if args.llama_quantize else _self("quantize_py", str(f16), str(ref_out), FTYPES[args.qtype][1],
                                                   args.threads))
    rows.append(run_stage("reference: quantize", quant_cmd, work, f16.stat().st_size, [ref_out]))
    rows.append({"stage": "reference: total", "seconds": sum(r["seconds"] for r in rows),
                 "read": sum(r["read"] for r in rows), "written": sum(r["written"] for r in rows),
                 "peak_rss": max(r["peak_rss"] for r in rows),
                 "peak_extra_disk": merged_disk + f16.stat().st_size + ref_out.stat().st_size})
    return rows


def _save(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
