"""Bad input: each build fails with a clear message, leaves no artifact, registers nothing, keeps the config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lorag.build.pipeline import BuildRequest, run_build
from lorag.config import update_config
from lorag.errors import AdapterError, BuildError, ConfigError, DiskSpaceError, LoragError, OllamaError
from tests.helpers.fake_ollama import free_port_url


def _entries(path: Path) -> set[str]:
    return {p.name for p in path.iterdir() if not p.name.endswith(".lock") and p.name != ".hash-cache.json"} \
        if path.is_dir() else set()


def expect_failure(config_path: Path, request: BuildRequest, error: type[Exception], match: str) -> Exception:
    """Run the build, expect ``error``; check the config and the output dir are untouched."""
    from lorag.config import load_config

    config = load_config(config_path)
    before_cfg, before_out = config_path.read_bytes(), _entries(config.output_dir)
    request.update_config = True
    with pytest.raises(error, match=match) as info:
        run_build(config, request)
    assert config_path.read_bytes() == before_cfg
    assert _entries(config.output_dir) <= before_out
    assert not list(config.output_dir.glob(".lorag-tmp-*")) if config.output_dir.exists() else True
    return info.value


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_unknown_quantization(build_config: Path, tiny_qwen2_adapter: Path) -> None:
    err = expect_failure(build_config, BuildRequest(lora_path=tiny_qwen2_adapter, quantization="Q3_X"),
                         BuildError, "unknown quantization type 'Q3_X'")
    assert err.hint == "Choose one of: F16, Q8_0, Q4_K_S, Q4_K_M, Q5_K_M, Q6_K."  # type: ignore[attr-defined]


def test_base_not_found(build_config: Path, tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    expect_failure(build_config, BuildRequest(lora_path=tiny_qwen2_adapter, base=tmp_path / "nope"),
                   BuildError, "base model not found")
    adapter = _copy(tiny_qwen2_adapter, tmp_path / "ad")
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "someone/missing-base-7B"
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    err = expect_failure(build_config, BuildRequest(lora_path=adapter), AdapterError, "not found locally")
    assert "search_paths" in str(err)


def test_adapter_dir_missing(build_config: Path, tmp_path: Path) -> None:
    expect_failure(build_config, BuildRequest(lora_path=tmp_path / "none"), BuildError, "does not exist")


def test_architecture_mismatch(build_config: Path, tiny_qwen2_adapter: Path, tiny_llama: Path) -> None:
    expect_failure(build_config, BuildRequest(lora_path=tiny_qwen2_adapter, base=tiny_llama),
                   AdapterError, "trained on a qwen2 model")


def test_rank_mismatch(build_config: Path, tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    adapter = _copy(tiny_qwen2_adapter, tmp_path / "ad")
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["r"] = 4
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    expect_failure(build_config, BuildRequest(lora_path=adapter, quantization="Q5_K_M"), BuildError,
                   "rank mismatch .* r=4 .* rank 8")


def test_corrupt_adapter_file(build_config: Path, tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    adapter = _copy(tiny_qwen2_adapter, tmp_path / "ad")
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    err = expect_failure(build_config, BuildRequest(lora_path=adapter, quantization="Q5_K_M"), LoragError, "adapter")
    assert "adapter" in str(err) and ("unreadable" in str(err) or "corrupt" in str(err))


def test_nan_in_adapter(build_config: Path, tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    adapter = _copy(tiny_qwen2_adapter, tmp_path / "ad")
    tensors = load_file(adapter / "adapter_model.safetensors")
    key = sorted(k for k in tensors if "lora_B" in k)[0]
    tensors[key][0, 0] = float("nan")
    save_file(tensors, adapter / "adapter_model.safetensors")
    expect_failure(build_config, BuildRequest(lora_path=adapter, quantization="Q5_K_M"), LoragError, "NaN or Inf")


def test_bitsandbytes_base_refused(build_config: Path, tiny_qwen2_adapter: Path, tiny_qwen2: Path,
                                   tmp_path: Path) -> None:
    base = tmp_path / "bnb-base"
    base.mkdir()
    for entry in tiny_qwen2.iterdir():
        (base / entry.name).symlink_to(entry)
    cfg = json.loads((tiny_qwen2 / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}
    (base / "config.json").unlink()
    (base / "config.json").write_text(json.dumps(cfg))
    err = expect_failure(build_config, BuildRequest(lora_path=tiny_qwen2_adapter, base=base), BuildError,
                         "4-bit bitsandbytes checkpoint")
    assert "16-bit" in str(err)


def test_not_enough_disk(build_config: Path, tiny_qwen2_adapter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lorag.build.request as build

    monkeypatch.setattr(build, "disk_free", lambda path: 50_000_000)
    err = expect_failure(build_config, BuildRequest(lora_path=tiny_qwen2_adapter, quantization="Q6_K"),
                         DiskSpaceError, "not enough disk space")
    assert "only 50 MB is free" in str(err)


def test_adapter_mode_refuses_embedding_deltas(build_config: Path, tiny_qwen2: Path, tmp_path: Path) -> None:
    from tests.helpers.tiny import make_tiny_adapter

    adapter = make_tiny_adapter(tiny_qwen2, tmp_path / "ad-emb", targets=("q_proj", "embed_tokens"))
    expect_failure(build_config, BuildRequest(lora_path=adapter, mode="adapter"), BuildError,
                   "embed_tokens/lm_head.*--mode merge")


def test_ollama_unreachable(build_config: Path, tiny_qwen2_adapter: Path) -> None:
    err = expect_failure(build_config, BuildRequest(lora_path=tiny_qwen2_adapter, register="ollama",
                                                    ollama_host=free_port_url()), OllamaError, "cannot reach Ollama")
    assert "ollama serve" in str(err) and "--register none" in str(err)


def test_read_only_config(build_config: Path, tiny_qwen2_adapter: Path) -> None:
    build_config.chmod(0o444)
    expect_failure(build_config, BuildRequest(lora_path=tiny_qwen2_adapter), ConfigError, "read-only")


def test_cli_error_is_one_red_line(build_config: Path, tiny_qwen2_adapter: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from lorag.cli import main

    monkeypatch.setenv("LORAG_CONFIG", str(build_config))
    with pytest.raises(SystemExit) as exit_info:
        main(["model", "build", "--lora-path", str(tiny_qwen2_adapter), "--quantization", "Q3_X"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "error:" in err and "unknown quantization type 'Q3_X'" in err and "Traceback" not in err


def test_disk_full_during_merge(build_config: Path, tiny_qwen2_adapter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import lorag.build.shards as shards

    def full(path: Path, layout: object, produce: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(shards, "write_shard", full)
    update_config(build_config, {"build.route": "reference"})  # the merge stage belongs to llama.cpp's route
    expect_failure(build_config, BuildRequest(lora_path=tiny_qwen2_adapter, quantization="Q5_K_M"), BuildError,
                   "writing the build files failed: No space left on device")


def test_disk_full_during_single_pass(build_config: Path, tiny_qwen2_adapter: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import lorag.atomic

    def full(path: Path, mode: str = "wb") -> object:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(lorag.atomic, "atomic_open", full)
    expect_failure(build_config, BuildRequest(lora_path=tiny_qwen2_adapter, quantization="Q5_K_M"), BuildError,
                   "No space left on device")


def test_output_dir_not_creatable(build_config: Path, tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    expect_failure(build_config, BuildRequest(lora_path=tiny_qwen2_adapter, output_dir=tmp_path / "file" / "out"),
                   BuildError, "cannot create the output directory")


def test_verify_skips_when_transformers_cannot_run_and_fails_when_llama_cpp_cannot_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    import numpy as np

    import lorag.build.fidelity as fid
    from lorag.build.behaviour import FineTuneReference
    from lorag.build.progress import StageProgress
    from lorag.build.verify import verify_stage

    plan = SimpleNamespace(base_bytes=1000, notes=[])
    bogus = tmp_path / "model-F16.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 60)

    def no_arch(*args: object) -> None:
        raise ValueError("model type foo is not supported")

    monkeypatch.setattr(fid, "probe_ids", lambda d: [1, 2, 3])
    monkeypatch.setattr(FineTuneReference, "logits", no_arch)
    result = verify_stage(plan, tmp_path, bogus, bogus, StageProgress(None, "verify"))  # type: ignore[arg-type]
    assert result["kl_mean"] is None and "fidelity check skipped" in result["notes"][0]
    monkeypatch.setattr(FineTuneReference, "logits", lambda self, ids: np.zeros((3, 10)))
    with pytest.raises(BuildError, match=r"llama\.cpp cannot load the built model-F16\.gguf"):
        verify_stage(plan, tmp_path, bogus, bogus, StageProgress(None, "verify"))  # type: ignore[arg-type]
