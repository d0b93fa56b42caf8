"""Inputs checked before any expensive work: the adapter path, --name, models.roots, shards, the output folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from lorag.build.checks import adapter_directory, check_inside_roots, check_model_name, check_shards
from lorag.build.progress import StageProgress
from lorag.build.request import BuildRequest
from lorag.build.validate import plan_build
from lorag.config import load_config
from lorag.errors import BuildError, OllamaError, PathNotAllowedError


def test_lora_path_that_is_a_file_or_a_gguf(tmp_path: Path) -> None:
    gguf, other = tmp_path / "model.gguf", tmp_path / "notes.txt"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00")
    other.write_text("x")
    with pytest.raises(BuildError) as info:
        adapter_directory(gguf)
    assert info.value.message == (f"--lora-path {gguf} is a GGUF file: that is already a built model, so there is "
                                  "nothing to build.")
    with pytest.raises(BuildError) as info:
        adapter_directory(other)
    assert info.value.message == f"--lora-path {other} is a file, not a LoRA adapter directory."
    with pytest.raises(BuildError, match="does not exist"):
        adapter_directory(tmp_path / "none")


def test_relative_paths_become_absolute(build_config: Path, tiny_qwen2: Path, tiny_qwen2_adapter: Path,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(tiny_qwen2_adapter, tmp_path / "lora")
    monkeypatch.chdir(tmp_path)
    plan = plan_build(load_config(build_config),
                      BuildRequest(lora_path=Path("lora"), base=tiny_qwen2, output_dir=Path("out_y1")),
                      StageProgress(None, "validate"))
    assert plan.adapter_dir == tmp_path / "lora" and plan.output_dir == tmp_path / "out_y1"
    assert plan.final_dir.parent == tmp_path / "out_y1" and plan.base_dir.is_absolute()


@pytest.mark.parametrize("name", ["My Model:/../x", "a/b", "-x", "model:.tag", "x" * 81, "ok:" + "t" * 129])
def test_invalid_names_are_refused_with_the_valid_form(name: str) -> None:
    with pytest.raises(BuildError) as info:
        check_model_name(name)
    assert info.value.message == f"--name {name!r} is not a valid model name."
    assert info.value.hint == ("Use letters, digits, '.', '_' and '-', optionally followed by :tag, for example "
                               "my-model or my-model:q4_k_m.")


@pytest.mark.parametrize("name", [None, "tiny-qwen2", "My_Model.v2:Q4_K_M", "x:1"])
def test_valid_names_pass(name: str | None) -> None:
    check_model_name(name)


def test_name_is_checked_before_the_adapter_is_read(build_config: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="is not a valid model name"):
        plan_build(load_config(build_config), BuildRequest(lora_path=tmp_path / "none", name="My Model:/../x"),
                   StageProgress(None, "validate"))


def test_every_file_read_must_be_inside_the_roots(tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    adapter = shutil.copytree(tiny_qwen2_adapter, root / "lora")
    check_inside_roots("adapter", adapter, (root,))
    check_inside_roots("adapter", adapter, ())  # no roots: the command line reads what its user can
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(b"x")
    (adapter / "extra.safetensors").symlink_to(outside)
    with pytest.raises(PathNotAllowedError) as info:
        check_inside_roots("adapter", adapter, (root,))
    assert info.value.message == (f"the adapter's file extra.safetensors {adapter / 'extra.safetensors'} resolves "
                                  f"to {outside}, which is outside models.roots ({root}).")


def test_a_base_outside_the_roots_is_refused(build_config: Path, tiny_qwen2: Path, tiny_qwen2_adapter: Path,
                                             tmp_path: Path) -> None:
    root = tmp_path / "root"
    adapter = shutil.copytree(tiny_qwen2_adapter, root / "lora")
    request = BuildRequest(lora_path=adapter, base=tiny_qwen2, roots=(root,))
    with pytest.raises(PathNotAllowedError, match=f"the base model {tiny_qwen2} resolves to .* outside models.roots"):
        plan_build(load_config(build_config), request, StageProgress(None, "validate"))


def test_a_missing_shard_is_named(tiny_qwen2: Path, tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    for entry in tiny_qwen2.iterdir():
        if entry.is_file():
            os.symlink(entry, base / entry.name)
    (base / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a.weight": "model.safetensors", "b.weight": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(BuildError) as info:
        check_shards(base)
    expected = (f"the model {base} is incomplete: model-00002-of-00002.safetensors, named in "
                "model.safetensors.index.json, is missing.")
    assert info.value.message == expected
    from lorag.errors import ModelError
    from lorag.inspect.model import inspect_path

    with pytest.raises(ModelError) as inspected:  # `lorag model inspect` says the same, not "fine"
        inspect_path(base)
    assert inspected.value.message == expected


def test_an_ollama_that_never_answers_fails_the_build_in_seconds(build_config: Path, tiny_qwen2: Path,
                                                                 tiny_qwen2_adapter: Path, fake_ollama) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.state.hang_s = 30.0
    request = BuildRequest(lora_path=tiny_qwen2_adapter, base=tiny_qwen2, register="ollama",
                           ollama_host=fake_ollama.url)
    with pytest.raises(OllamaError) as info:
        plan_build(load_config(build_config), request, StageProgress(None, "validate"))
    assert info.value.message == (f"Ollama at {fake_ollama.url} accepted the connection but did not answer GET "
                                  "/api/version in time (ReadTimeout).")
