"""Run llama.cpp's reference converters (HF → GGUF, PEFT LoRA → GGUF LoRA) from the pinned source tree."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from lorag.build.children import guarded_command, guarded_env
from lorag.build.progress import StageProgress
from lorag.errors import BuildError
from lorag.inspect.gguf_meta import gguf_string

LLAMA_CPP_VERSION = "0.3.36"
_TREE_PARTS = ("convert_", "conversion/", "gguf-py/")


def llama_cpp_dir() -> Path:
    """Where llama.cpp's converters live: $LORAG_LLAMA_CPP_DIR or ~/.cache/lorag/llama.cpp-<version>."""
    env = os.environ.get("LORAG_LLAMA_CPP_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "lorag" / f"llama.cpp-{LLAMA_CPP_VERSION}"


def ensure_converters() -> Path:
    """Return the converter tree, unpacking it from the local sdist if needed; BuildError if unavailable."""
    tree = llama_cpp_dir()
    if (tree / "convert_hf_to_gguf.py").is_file() and (tree / "gguf-py").is_dir():
        return tree
    sdist = os.environ.get("LORAG_LLAMA_CPP_SDIST")  # a downloaded llama-cpp-python sdist of the same version
    if sdist and Path(sdist).is_file():
        _extract(Path(sdist), tree)
        return tree
    raise BuildError(
        f"llama.cpp's converters are not installed at {tree}.",
        "Run scripts/install.sh (it unpacks them there), or set LORAG_LLAMA_CPP_DIR to a llama.cpp tree "
        f"from llama-cpp-python {LLAMA_CPP_VERSION}.",
    )


def _extract(sdist: Path, tree: Path) -> None:
    partial = tree.with_name(tree.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    marker = "/vendor/llama.cpp/"
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if marker not in member.name or not (member.isfile() or member.isdir()):
                continue
            rel = member.name.split(marker, 1)[1]
            if not rel.startswith(_TREE_PARTS):
                continue
            member.name = rel
            tar.extract(member, partial, filter="data")
    os.replace(partial, tree)


def converter_version() -> str:
    """A short fingerprint of the converter scripts, part of every artifact's cache key."""
    tree = ensure_converters()
    digest = hashlib.sha256()
    for name in ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py"):
        digest.update((tree / name).read_bytes())
    return f"{LLAMA_CPP_VERSION}-{digest.hexdigest()[:12]}"


def convert_hf(model_dir: Path, outfile: Path, progress: StageProgress, model_name: str | None = None) -> None:
    """Convert an HF model directory to an F16 GGUF with llama.cpp's convert_hf_to_gguf.py.

    F16 (also for bf16 bases) because every llama.cpp backend runs it; bf16 weights only lose range beyond
    ±65504, which real weights never reach and the F16 fidelity check would catch.
    """
    tree = ensure_converters()
    args = [str(tree / "convert_hf_to_gguf.py"), str(model_dir), "--outtype", "f16", "--outfile", str(outfile)]
    if model_name:
        args += ["--model-name", model_name]
    _run(args, tree, progress, "convert_hf_to_gguf.py")


def convert_lora(adapter_dir: Path, base_dir: Path, outfile: Path, progress: StageProgress) -> None:
    """Convert a PEFT LoRA adapter to a GGUF LoRA with llama.cpp's convert_lora_to_gguf.py."""
    tree = ensure_converters()
    args = [str(tree / "convert_lora_to_gguf.py"), str(adapter_dir), "--base", str(base_dir),
            "--outtype", "f16", "--outfile", str(outfile)]
    _run(args, tree, progress, "convert_lora_to_gguf.py")


def _run(args: list[str], tree: Path, progress: StageProgress, what: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree / "gguf-py"), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    tail: list[str] = []
    percent = 0.0
    with subprocess.Popen(
        guarded_command(Path(args[0]), *args[1:]), cwd=tree, env=guarded_env(env), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True, encoding="utf-8", errors="replace",
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in _lines(proc.stdout):
                tail = [*tail[-19:], line]
                percent = _percent(line, percent)
                progress.update(percent, message=_message(line)[:200])
        except BaseException:
            proc.kill()
            raise
        rc = proc.wait()
    if rc != 0:
        detail = "\n".join(tail[-8:])
        raise BuildError(f"{what} failed (exit {rc}):\n{detail}", "The base model may be an architecture llama.cpp "
                         "does not support, or its files are incomplete.")


def _lines(stream: IO[str]) -> Iterator[str]:
    # tqdm writes "\r"-separated updates; split on both so each refresh becomes an event.
    buf = ""
    while True:
        chunk = stream.read(256)
        if not chunk:
            break
        buf += chunk
        *parts, buf = buf.replace("\r", "\n").split("\n")
        for part in parts:
            if part.strip():
                yield part.strip()
    if buf.strip():
        yield buf.strip()


def _message(line: str) -> str:
    """A converter line as a status message: its logging prefix ("INFO:hf-to-gguf:") dropped, warnings kept."""
    level, sep, rest = line.partition(":")
    if sep and level in ("INFO", "DEBUG"):
        logger, sep, text = rest.partition(":")
        if sep and logger and " " not in logger:
            return text.strip() or line
    return line


def _percent(line: str, last: float) -> float:
    # "Writing:  96%|█████▌| 77.6M/80.8M": take the tqdm percentage when there is one.
    head = line.split("%|", 1)[0]
    if "%|" in line and head[-3:].strip().isdigit():
        return float(head[-3:].strip())
    return last


def check_embedded_template(gguf: Path, template: str | None) -> None:
    """The GGUF must carry the fine-tune's exact chat template (Ollama >= 0.30 and llama.cpp render with it)."""
    if template is None:
        return
    embedded = gguf_string(gguf, "tokenizer.chat_template")
    if embedded != template:
        raise BuildError(f"the converted GGUF's tokenizer.chat_template differs from the fine-tune's chat template "
                         f"({'missing' if embedded is None else 'different text'}).",
                         "Check the chat template files in the adapter and base directories.")
