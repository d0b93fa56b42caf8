"""Checks of a build's inputs that run before any expensive work: paths, names, roots, shards, writable output.

Each failure is one BuildError (or PathNotAllowedError) that says what was wrong and what to do.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from lorag.errors import BuildError, PathNotAllowedError
from lorag.inspect.files import incomplete_message, missing_shards

# Ollama's model names: name[:tag]; the tag may not start with "." or "-".
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?$")


def adapter_directory(raw: Path) -> Path:
    """The absolute adapter directory for ``--lora-path`` (converters run elsewhere, so relative paths break)."""
    path = Path(raw).expanduser().absolute()
    if path.is_file():
        if _is_gguf(path):
            raise BuildError(f"--lora-path {path} is a GGUF file: that is already a built model, so there is "
                             "nothing to build.",
                             "Serve it as it is (set llm.model to it; `lorag model plan` shows how it fits), or pass "
                             "the PEFT adapter directory the GGUF was built from.")
        raise BuildError(f"--lora-path {path} is a file, not a LoRA adapter directory.",
                         "Pass the directory that holds adapter_config.json and adapter_model.safetensors.")
    if not path.is_dir():
        raise BuildError(f"LoRA adapter directory {path} does not exist.", "Check --lora-path.")
    return path


def check_model_name(name: str | None) -> None:
    """Refuse a --name Ollama would refuse, before the build instead of after it."""
    if name is not None and not _MODEL_NAME.match(name.strip()):
        raise BuildError(f"--name {name!r} is not a valid model name.",
                         "Use letters, digits, '.', '_' and '-', optionally followed by :tag, "
                         "for example my-model or my-model:q4_k_m.")


def check_inside_roots(what: str, directory: Path, roots: tuple[Path, ...]) -> None:
    """The directory and every file in it (what a build reads) must lie inside ``roots``, symlinks resolved.

    No roots means no restriction (the command line may read anything its user can).
    """
    if not roots:
        return
    resolved = [r.resolve() for r in roots]
    paths = {what: directory} | {f"{what}'s file {p.name}": p for p in sorted(directory.iterdir()) if p.is_file()}
    for what, path in paths.items():
        real = path.resolve()
        if not any(real == r or real.is_relative_to(r) for r in resolved):
            raise PathNotAllowedError(f"the {what} {path} resolves to {real}, which is outside models.roots "
                                      f"({', '.join(str(r) for r in resolved)}).",
                                      "Move it inside models.roots, or add its folder there.")


def check_shards(base_dir: Path) -> None:
    """Every shard a base's model.safetensors.index.json names must exist: name the missing one."""
    missing = missing_shards(base_dir)
    if missing:
        raise BuildError(incomplete_message(base_dir, missing),
                         "Copy the missing shard(s) next to the index, or download the base again.")


def writable_output(output_dir: Path) -> Path:
    """Create the output directory (absolute) and make sure a build can write into it."""
    output_dir = output_dir.expanduser().absolute()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_dir):  # created and removed at once; never seen by others
            pass
    except OSError as exc:
        raise BuildError(f"cannot write in the output directory {output_dir}: {exc.strerror or exc}.",
                         "Pass --output with a writable directory (or fix its permissions).") from exc
    return output_dir


def _is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"GGUF"
    except OSError:
        return False
