"""What the reference converter would put in the GGUF (metadata, tensor list), taken from the converter itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorag.build.children import guarded_command, guarded_env
from lorag.build.workdir import pin_template
from lorag.build.workdir import stage_model_dir as stage_finetune_dir
from lorag.errors import BuildError

# Tensors the fast path reads, merges and quantizes itself; everything else (norms, biases, generated rope
# tables) is small and taken byte for byte from the converter.
STREAMED = (r"token_embd\.weight|output\.weight"
            r"|blk\.\d+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight")
_SKIP_FILES = {"README.md", "adapter_config.json", ".gitattributes"}


@dataclass(frozen=True)
class SkeletonTensor:
    """One tensor as the converter's F16 GGUF would describe it (shape in numpy order: rows last)."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    nbytes: int
    small_offset: int  # -1 when the fast path streams it


@dataclass
class Skeleton:
    """KV pairs (raw, in order) and tensor list of the converter's output, plus the small tensors' bytes."""

    hf_arch: str
    gguf_arch: str
    kv: list[tuple[str, bytes, int, Any]]
    tensors: list[SkeletonTensor]
    alignment: int
    hparams: dict[str, Any]
    small_path: Path

    def small_bytes(self, tensor: SkeletonTensor) -> bytes:
        """The converter's bytes for a small (non-streamed) tensor."""
        with open(self.small_path, "rb") as fh:
            fh.seek(tensor.small_offset)
            return fh.read(tensor.nbytes)

    def value(self, key: str, default: Any = None) -> Any:
        """A scalar KV value by key."""
        return next((plain for k, _, _, plain in self.kv if k == key), default)


def stage_model_dir(base_dir: Path, adapter_dir: Path | None, chat_template: str | None, out_dir: Path) -> Path:
    """A directory that looks like the reference route's merged model: base files (weights linked), the
    fine-tune's tokenizer files and its chat template."""
    if adapter_dir is not None:
        stage_finetune_dir(base_dir, adapter_dir, out_dir, link_weights=True)
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        for entry in sorted(base_dir.iterdir()):
            if entry.is_file() and entry.name not in _SKIP_FILES and not (out_dir / entry.name).exists():
                os.symlink(entry.resolve(), out_dir / entry.name)
    if chat_template is not None:
        pin_template(out_dir, chat_template)
    return out_dir


class SkeletonJob:
    """llama.cpp's converter, run lazily on a staged directory in a child process (reads headers and tokenizer)."""

    def __init__(self, model_dir: Path, work_dir: Path, tree: Path, model_name: str | None = None) -> None:
        script = Path(__file__).with_name("_skeleton_script.py")
        work_dir.mkdir(parents=True, exist_ok=True)
        self.model_dir, self.work_dir = model_dir, work_dir
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(tree / "gguf-py")}
        self._log = open(work_dir / "converter.log", "w+b")  # noqa: SIM115 - closed in result()
        self._proc = subprocess.Popen(guarded_command(script, str(tree), str(model_dir), str(work_dir), STREAMED,
                                                      model_name or ""),
                                      cwd=tree, env=guarded_env(env), stdout=subprocess.PIPE, stderr=self._log)

    def wait_imported(self) -> None:
        """Block until the converter has loaded its modules (or died)."""
        assert self._proc.stdout is not None
        self._proc.stdout.readline()

    def result(self) -> Skeleton:
        """Wait for the converter and load what it reported; BuildError with its last lines if it failed."""
        rc = self._proc.wait()
        self._log.seek(0)
        output = self._log.read().decode("utf-8", "replace")
        self._log.close()
        if rc != 0:
            tail = "\n".join(output.splitlines()[-8:])
            raise BuildError(f"llama.cpp's converter could not read {self.model_dir} (exit {rc}):\n{tail}",
                             "The base model may be an architecture llama.cpp does not support.")
        return load_skeleton(self.work_dir)

    def kill(self) -> None:
        """Stop the converter if it still runs."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if not self._log.closed:
            self._log.close()


def read_skeleton(model_dir: Path, work_dir: Path, tree: Path) -> Skeleton:
    """Run the converter lazily on ``model_dir`` and load what it reports (blocking)."""
    return SkeletonJob(model_dir, work_dir, tree).result()


def load_skeleton(work_dir: Path) -> Skeleton:
    """Read the files a converter run (or the cache) left in ``work_dir``."""
    meta = json.loads((work_dir / "meta.json").read_text(encoding="utf-8"))
    raw = (work_dir / "kv.bin").read_bytes()
    kv = [(k, raw[start:start + length], vtype, plain) for k, start, length, vtype, plain in meta["kv"]]
    tensors = [SkeletonTensor(n, tuple(s), t, nb, off) for n, s, t, nb, off in meta["tensors"]]
    return Skeleton(meta["hf_arch"], meta["gguf_arch"], kv, tensors, int(meta["alignment"]), meta["hparams"],
                    work_dir / "small.bin")


def remove_quietly(path: Path) -> None:
    """Delete a scratch directory, ignoring errors."""
    shutil.rmtree(path, ignore_errors=True)
