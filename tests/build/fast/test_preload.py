"""The import-page profile: recorded from this process's real mappings, read back in a fresh process, and the
reads that start before torch has imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lorag.build.fast import preload
from lorag.build.fast.reader import Prefetcher, index_model, read_tensor

pytestmark = pytest.mark.skipif(not Path("/proc/self/pagemap").is_file(), reason="Linux /proc needed")
REPO = Path(__file__).resolve().parents[3]


def test_ranges_join_pages_closer_than_the_gap() -> None:
    gap_pages = preload.GAP // 4096
    pages = [0, 1, 2, 10, 10 + gap_pages + 2]
    assert preload._ranges(pages, 4096) == [[0, 11 * 4096], [(12 + gap_pages) * 4096, 4096]]
    assert preload._ranges([], 4096) == []


def test_record_lists_torch_libraries_and_bytecode(tmp_path: Path) -> None:
    import torch

    path = preload.record(tmp_path / "pages.json")
    assert path == tmp_path / "pages.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == preload.VERSION
    files = {f["path"]: f for f in data["files"]}
    torch_dir = str(Path(torch.__file__).parent)
    libs = [p for p in files if p.startswith(torch_dir) and ".so" in p]
    assert any("libtorch_cpu" in p for p in libs), libs[:5]
    assert any(p.endswith(".pyc") and "torch" in p for p in files)
    for entry in files.values():
        assert entry["size"] == os.stat(entry["path"]).st_size
        for start, length in entry["ranges"]:
            assert start % 4096 == 0 and length > 0
            assert start < entry["size"] + 4096
    assert data["bytes"] == sum(length for f in data["files"] for _, length in f["ranges"]) <= preload.LIMIT
    assert preload.is_current(path)


def test_a_changed_file_makes_the_profile_stale(tmp_path: Path) -> None:
    lib = tmp_path / "libx.so"
    lib.write_bytes(b"\0" * 8192)
    profile = tmp_path / "pages.json"
    st = lib.stat()
    entry = {"path": str(lib), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ranges": [[0, 8192]]}
    profile.write_text(json.dumps({"version": preload.VERSION, "bytes": 8192, "files": [entry]}), encoding="utf-8")
    assert preload.is_current(profile)
    lib.write_bytes(b"\1" * 4096)
    assert not preload.is_current(profile)


@pytest.mark.parametrize("text", ["", "{", json.dumps({"version": 99, "files": []}), json.dumps([1, 2])])
def test_a_broken_profile_is_ignored(tmp_path: Path, text: str) -> None:
    profile = tmp_path / "pages.json"
    profile.write_text(text, encoding="utf-8")
    assert preload._load(profile) is None
    assert not preload.is_current(profile)
    assert not preload.is_current(tmp_path / "missing.json")


def test_off_records_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LORAG_IMPORT_PAGES", "0")
    assert preload.profile_path() is None
    assert preload.record() is None
    monkeypatch.setenv("LORAG_IMPORT_PAGES", str(tmp_path / "p.json"))
    assert preload.profile_path() == tmp_path / "p.json"


def test_torch_already_imported_means_nothing_to_wait_for(tmp_path: Path) -> None:
    import torch  # noqa: F401

    done = preload.start(tmp_path / "missing.json")
    assert done is not None and done.is_set()


_CHILD = """
import json, os, sys, time
from pathlib import Path
from lorag.build.fast import preload
advised = []
if sys.argv[2] == "advice":
    real = os.posix_fadvise
    def record(fd, start, length, how):
        advised.append([os.readlink(f"/proc/self/fd/{fd}"), start, length, how == os.POSIX_FADV_WILLNEED])
        real(fd, start, length, how)
    os.posix_fadvise = record
else:
    del os.posix_fadvise
def rchar():
    return int(next(l for l in open('/proc/self/io') if l.startswith('rchar')).split()[1])
before = rchar()
done = preload.start(Path(sys.argv[1]))
if done is None:
    print(json.dumps({"started": False})); raise SystemExit
assert done.wait(30)
again = preload.start(Path(sys.argv[1]))  # the build's own call after the command's: the same preload, not a second
print(json.dumps({"started": True, "read": rchar() - before, "torch": "torch" in sys.modules, "advised": advised,
                  "same": again is done}))
"""


def _child(profile: Path, how: str = "advice") -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(profile), how], cwd=REPO, capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _profile_with_a_gap(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "libdata.so"
    data.write_bytes(os.urandom(3 << 20))
    gone = tmp_path / "libgone.so"
    st = data.stat()
    files = [{"path": str(data), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
              "ranges": [[0, 1 << 20], [2 << 20, 1 << 20]]},
             {"path": str(gone), "size": 10, "mtime_ns": 1, "ranges": [[0, 4096]]}]
    profile = tmp_path / "pages.json"
    profile.write_text(json.dumps({"version": preload.VERSION, "bytes": 2 << 20, "files": files}), encoding="utf-8")
    return profile, data


def test_a_fresh_process_asks_read_ahead_for_every_range_and_skips_changed_files(tmp_path: Path) -> None:
    profile, data = _profile_with_a_gap(tmp_path)
    result = _child(profile)
    assert result["started"] is True and result["torch"] is False and result["same"] is True
    # both ranges as read-ahead, not the gap, nothing for libgone; no plain reads of the data on top
    assert result["advised"] == [[str(data), 0, 1 << 20, True], [str(data), 2 << 20, 1 << 20, True]]
    assert int(str(result["read"])) < 1 << 20
    assert _child(tmp_path / "none.json") == {"started": False}


def test_without_read_ahead_advice_it_reads_every_range_itself(tmp_path: Path) -> None:
    profile, _ = _profile_with_a_gap(tmp_path)
    result = _child(profile, "no-advice")
    assert result["started"] is True and result["advised"] == []
    assert 2 << 20 <= int(str(result["read"])) < (2 << 20) + (1 << 20)  # both ranges, not the gap, not libgone


def test_reads_wait_for_the_gate_then_run_before_the_device_is_known(tiny_qwen2: Path) -> None:
    import torch

    index = index_model(tiny_qwen2)
    order = sorted(index.items())
    total = sum(loc.nbytes for _, loc in order)
    reader = Prefetcher(order, budget=1, device=None, early_budget=total)
    gate = threading.Event()
    try:
        reader.start(after=gate)
        time.sleep(0.2)
        assert reader.started_at == 0.0  # the gate is closed: nothing read
        gate.set()
        for _, future in list(reader._futures.items()):
            future.result(timeout=30)
        assert len(reader._futures) == len(order)  # the early budget held every tensor before attach()
        reader.attach("cpu")
        for key, loc in order:
            got = reader.take(key)
            want = read_tensor(loc)
            assert got.dtype == want.dtype and got.shape == want.shape
            assert bool((got.view(-1).view(torch.uint8) == want.view(-1).view(torch.uint8)).all())
        assert reader.started_at > 0.0
    finally:
        reader.close()


def test_while_the_early_budget_is_full_the_next_tensors_go_to_the_kernel_as_read_ahead(
        tiny_qwen2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    order = sorted(index_model(tiny_qwen2).items(), key=lambda item: item[1].nbytes)
    sizes = [loc.nbytes for _, loc in order]
    early = sum(sizes[:3])  # the first three tensors fit the early budget; the rest waits for attach()
    advised: list[tuple[str, int, int]] = []
    real = os.posix_fadvise

    def record(fd: int, offset: int, length: int, how: int) -> None:
        assert how == os.POSIX_FADV_WILLNEED
        advised.append((os.readlink(f"/proc/self/fd/{fd}"), offset, length))
        real(fd, offset, length, how)

    monkeypatch.setattr(os, "posix_fadvise", record)
    reader = Prefetcher(order, budget=1, device=None, early_budget=early)
    try:
        reader.start()
        deadline = time.monotonic() + 30
        while sum(length for *_, length in advised) < min(early, sum(sizes[3:])) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(reader._futures) == 3  # no read beyond the early budget: the rest is only advice
        # the tensors after the budgeted ones, in order, piece by piece, up to another early budget
        want = []
        for _, loc in order[3:]:
            for offset in range(loc.start, loc.start + loc.nbytes, 32 << 20):
                want.append((str(loc.path), offset, min(32 << 20, loc.start + loc.nbytes - offset)))
        got = advised[:len(want)]
        assert got == want[:len(got)] and got
        assert sum(length for *_, length in advised) < early + (32 << 20)
        reader.attach("cpu")
        for key, loc in order:  # the advised tensors are read as usual, byte for byte
            got, want = reader.take(key), read_tensor(loc)
            assert bool((got.reshape(-1).view(torch.uint8) == want.reshape(-1).view(torch.uint8)).all())
    finally:
        reader.close()


def test_refused_read_ahead_stops_quietly_and_the_reads_stay_whole(tiny_qwen2: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    order = sorted(index_model(tiny_qwen2).items(), key=lambda item: item[1].nbytes)
    calls: list[int] = []

    def refuse(fd: int, offset: int, length: int, how: int) -> None:
        calls.append(offset)
        raise OSError(22, "Invalid argument")  # a filesystem that takes no advice

    monkeypatch.setattr(os, "posix_fadvise", refuse)
    reader = Prefetcher(order, budget=1, device=None, early_budget=order[0][1].nbytes)
    try:
        reader.start()
        deadline = time.monotonic() + 30
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert len(calls) == 1  # the first refusal ends the read-ahead
        reader.attach("cpu")
        for key, loc in order:
            got, want = reader.take(key), read_tensor(loc)
            assert bool((got.reshape(-1).view(torch.uint8) == want.reshape(-1).view(torch.uint8)).all())
    finally:
        reader.close()


def test_a_failed_kernel_warm_up_still_records_the_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch

    from lorag.build.fast import gpu_quant, single_pass

    def broken(device: str) -> list[str]:
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gpu_quant, "warm_up", broken)
    monkeypatch.setenv("LORAG_IMPORT_PAGES", str(tmp_path / "pages.json"))
    assert single_pass.record_import_pages() == tmp_path / "pages.json"
    assert json.loads((tmp_path / "pages.json").read_text())["files"]


def test_settle_waits_until_the_early_reads_are_on_the_device(tiny_qwen2: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from lorag.build.fast import reader as reader_module

    moved: list[int] = []
    release = threading.Event()

    def to_device(tensor: Any, device: str) -> Any:  # no GPU here: a slow copy stands in
        release.wait(30)
        moved.append(tensor.numel())
        return tensor.clone()

    monkeypatch.setattr(reader_module, "_to_device", to_device)
    order = sorted(index_model(tiny_qwen2).items())
    reader = Prefetcher(order, budget=1, device=None, early_budget=sum(loc.nbytes for _, loc in order))
    try:
        reader.start()
        for future in list(reader._futures.values()):
            future.result(timeout=30)
        reader.attach("cuda")
        settled = threading.Thread(target=reader.settle)
        settled.start()
        settled.join(0.3)
        assert settled.is_alive() and moved == []  # still moving: settle waits
        release.set()
        settled.join(30)
        assert not settled.is_alive() and len(moved) == len(order)
        key, loc = order[0]
        got, want = reader.take(key), read_tensor(loc)
        assert bool((got.view(-1).view(torch.uint8) == want.view(-1).view(torch.uint8)).all())
    finally:
        release.set()
        reader.close()


@pytest.mark.slow
def test_a_build_records_a_profile_and_the_next_process_uses_it(tiny_qwen2: Path, tiny_qwen2_adapter: Path,
                                                                tmp_path: Path) -> None:
    profile = tmp_path / "pages.json"
    script = ("import json, sys; from pathlib import Path; from lorag.build.fast import build_gguf_single_pass as b; "
              "s = b(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), 'Q8_0', None, device='cpu'); "
              "print(json.dumps({'preload': s['preload'], 'torch': s['stages']['torch']}))")
    env = {**os.environ, "PYTHONPATH": str(REPO), "LORAG_IMPORT_PAGES": str(profile),
           "LORAG_FAST_CACHE": str(tmp_path / "skeletons")}
    runs = []
    for name in ("a.gguf", "b.gguf"):
        out = subprocess.run([sys.executable, "-c", script, str(tiny_qwen2), str(tiny_qwen2_adapter),
                              str(tmp_path / name)], cwd=REPO, env=env, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert [r["preload"] for r in runs] == ["none", "profile"]
    assert preload.is_current(profile)
    assert (tmp_path / "a.gguf").read_bytes() == (tmp_path / "b.gguf").read_bytes()
