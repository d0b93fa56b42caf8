"""Content-addressed artifacts: cache hits, progress events, cancellation, stale temp dirs and the build lock."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from lorag.build.cache import build_lock, sha256_file
from lorag.build.pipeline import BuildRequest, run_build
from lorag.build.progress import BuildCancelled
from lorag.errors import BuildError

pytestmark = pytest.mark.slow


def _request(adapter: Path, base: Path, **kw: object) -> BuildRequest:
    return BuildRequest(lora_path=adapter, base=base, name="tiny-qwen2", **kw)  # type: ignore[arg-type]


def test_first_build_artifacts_and_events(qwen2_q4) -> None:
    final = qwen2_q4.gguf.parent
    assert qwen2_q4.gguf.name == "model-Q4_K_M.gguf" and final.name.startswith("tiny-qwen2-")
    assert sorted(p.name for p in final.iterdir()) == ["Modelfile", "build.json", "model-Q4_K_M.gguf"]
    record = json.loads((final / "build.json").read_text())
    assert record["sha256"]["model-Q4_K_M.gguf"] == sha256_file(qwen2_q4.gguf)
    assert qwen2_q4.size_bytes == qwen2_q4.gguf.stat().st_size and not qwen2_q4.cache_hit
    # Qwen2 takes the single pass (merge + convert + quantize in one); the timings name the route taken.
    assert {"validate", "single_pass", "verify", "modelfile"} <= set(qwen2_q4.stages)
    events = qwen2_q4.events
    assert {e["stage"] for e in events} >= {"validate", "merge", "convert", "quantize", "verify", "modelfile"}
    # A skipped stage (register, without Ollama) says so with one more key.
    assert all(set(e) - {"skipped"} == {"stage", "percent", "bytes_done", "bytes_total", "message"} for e in events)
    quant = [e for e in events if e["stage"] == "quantize"]
    assert quant[-1]["percent"] == 100.0 and quant[-1]["bytes_done"] == qwen2_q4.size_bytes
    assert json.loads(json.dumps(qwen2_q4.to_dict()))["fidelity"]["kl_mean"] == qwen2_q4.fidelity["kl_mean"]


def test_second_build_is_a_cache_hit(qwen2_q4, build_config: Path, tiny_qwen2: Path, tiny_qwen2_adapter: Path) -> None:
    from lorag.config import load_config

    result = run_build(load_config(build_config), _request(tiny_qwen2_adapter, tiny_qwen2, update_config=True))
    assert result.cache_hit and result.gguf == qwen2_q4.gguf
    assert set(result.stages) == {"validate", "modelfile", "config"}
    assert result.fidelity["kl_mean"] == qwen2_q4.fidelity["kl_mean"]
    settings = load_config(build_config).settings
    assert (settings.llm.backend, settings.llm.model) == ("llamacpp", str(qwen2_q4.gguf))


def test_cancel_leaves_nothing(build_config: Path, tiny_qwen2: Path, tiny_qwen2_adapter: Path) -> None:
    from lorag.config import load_config

    config = load_config(build_config)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in config.output_dir.iterdir()}
    cancel = threading.Event()

    def progress(event: dict) -> None:
        if event["stage"] == "merge":
            cancel.set()

    with pytest.raises(BuildCancelled, match="cancelled during merge"):
        run_build(config, _request(tiny_qwen2_adapter, tiny_qwen2, quantization="Q4_K_S"), progress, cancel)
    after = {p.name for p in config.output_dir.iterdir()}
    assert {n for n in after - before if not n.endswith(".lock") and n != ".hash-cache.json"} == set()
    assert not list(config.output_dir.glob(".lorag-tmp-*"))


def test_stale_temp_dirs_cleaned_and_lock_refuses_second_build(
    qwen2_q4, build_config: Path, tiny_qwen2: Path, tiny_qwen2_adapter: Path,
) -> None:
    from lorag.config import load_config

    config = load_config(build_config)
    stale = config.output_dir / ".lorag-tmp-tiny-qwen2-000000000000-abc123_x"
    (stale / "merged").mkdir(parents=True)
    partial_base = config.output_dir / "bases" / ".lorag-tmp-base-0123456789abcdef-k3j_x9a.gguf"
    partial_base.parent.mkdir(exist_ok=True)
    partial_base.write_bytes(b"GGUF")
    run_build(config, _request(tiny_qwen2_adapter, tiny_qwen2))
    assert not stale.exists() and not partial_base.exists()
    with build_lock(config.output_dir, qwen2_q4.gguf.parent.name), \
            pytest.raises(BuildError, match=r"a build of this model .* is already running"):
        run_build(config, _request(tiny_qwen2_adapter, tiny_qwen2))


def test_hash_cache_by_size_and_mtime(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 100)
    first = sha256_file(f, tmp_path)
    assert json.loads((tmp_path / ".hash-cache.json").read_text())[str(f.resolve())]["sha256"] == first
    f.write_bytes(b"b" * 101)
    assert sha256_file(f, tmp_path) != first


def test_kl_above_build_kl_warn_is_a_warning(qwen2_q4, build_config: Path, tiny_qwen2: Path,
                                             tiny_qwen2_adapter: Path, caplog: pytest.LogCaptureFixture) -> None:
    from lorag.config import update_config

    config = update_config(build_config, {"build.kl_warn": 0.0})
    with caplog.at_level("WARNING", logger="lorag.build.finish"):
        result = run_build(config, _request(tiny_qwen2_adapter, tiny_qwen2))
    assert result.cache_hit
    assert any("build.kl_warn 0.0" in w for w in result.warnings)
    assert any("build.kl_warn" in r.message for r in caplog.records)


def test_build_json_without_gguf_is_rebuilt(build_config: Path, tiny_qwen2: Path, tiny_qwen2_adapter: Path) -> None:
    import shutil

    from lorag.build.progress import StageProgress
    from lorag.build.validate import plan_build
    from lorag.config import load_config

    config = load_config(build_config)
    request = _request(tiny_qwen2_adapter, tiny_qwen2, quantization="Q4_K_S")
    final = plan_build(config, request, StageProgress(None, "validate")).final_dir
    final.mkdir()
    (final / "build.json").write_text(json.dumps({"gguf": "model-Q4_K_S.gguf"}))
    cancel = threading.Event()

    def progress(event: dict) -> None:
        if event["stage"] == "merge":  # reaching the merge means the skipped checks ran and the build restarted
            cancel.set()

    try:
        with pytest.raises(BuildCancelled, match="during merge"):
            run_build(config, request, progress, cancel)
    finally:
        shutil.rmtree(final)
