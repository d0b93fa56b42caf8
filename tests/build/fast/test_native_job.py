"""The native metadata pass in a child process writes the same skeleton as in-process, and reports fallbacks."""

from __future__ import annotations

import json
from pathlib import Path

from lorag.build.fast.metadata import write_native_skeleton
from lorag.build.fast.native_job import NativeJob
from lorag.build.fast.skeleton import load_skeleton, stage_model_dir


def test_child_writes_the_in_process_skeleton(tiny_qwen2: Path, tmp_path: Path) -> None:
    staged = stage_model_dir(tiny_qwen2, None, None, tmp_path / "staged" / "merged")
    assert write_native_skeleton(staged, tmp_path / "here", "Tiny") is None
    job = NativeJob(staged, tmp_path / "child", "Tiny")
    assert job.result() is None
    here, child = load_skeleton(tmp_path / "here"), load_skeleton(tmp_path / "child")
    assert [(k, raw) for k, raw, _, _ in child.kv] == [(k, raw) for k, raw, _, _ in here.kv]
    assert [(t.name, t.shape, t.ggml_type) for t in child.tensors] == [(t.name, t.shape, t.ggml_type)
                                                                     for t in here.tensors]
    for name in ("small.bin", "kv.bin"):
        assert (tmp_path / "child" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()


def test_child_reports_what_the_native_code_does_not_handle(tiny_qwen2: Path, tmp_path: Path) -> None:
    staged = stage_model_dir(tiny_qwen2, None, None, tmp_path / "staged" / "merged")
    config = json.loads((staged / "config.json").read_text())
    (staged / "config.json").unlink()  # a link to the fixture's file: replaced, not edited
    (staged / "config.json").write_text(json.dumps({**config, "architectures": ["MysteryForCausalLM"]}))
    assert NativeJob(staged, tmp_path / "child", None).result() == "architecture MysteryForCausalLM"
