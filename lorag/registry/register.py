"""Register a built GGUF with Ollama: upload blobs by digest (once), create the model, verify it."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lorag.errors import OllamaError
from lorag.registry.modelfile import ModelSpec
from lorag.registry.ollama import OllamaClient


class Progress(Protocol):
    """Where registration reports how far it got (the build's StageProgress is one)."""

    def update(self, percent: float, bytes_done: int = 0, bytes_total: int = 0, message: str = "") -> None: ...

    def fraction(self, done: int, total: int, message: str = "") -> None: ...


@dataclass
class Registration:
    """What Ollama now knows the model as."""

    name: str
    version: str
    uploaded: list[str]


def renders_jinja(version: str) -> bool:
    """Whether this Ollama version renders the GGUF's Jinja chat template itself (0.30 and later)."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]]
    return bool(parts) and tuple(parts + [0] * (3 - len(parts))) >= (0, 30, 0)


def register_model(
    client: OllamaClient, name: str, gguf: Path, spec: ModelSpec, progress: Progress,
    adapter: Path | None = None, digests: dict[str, str] | None = None,
) -> Registration:
    """Upload missing blobs, POST /api/create, then check /api/show answers for the new model.

    ``digests`` maps file names to SHA-256 hex digests already known (a build records them); others are hashed.
    """
    digests = digests or {}
    version = client.version()
    progress.update(1, message=f"Ollama {version} at {client.host}")
    if spec.template is None and not renders_jinja(version):
        progress.update(1, message=f"Ollama {version} predates Jinja templates and the chat format is unknown: "
                        "it will prompt the model without its chat template; upgrade Ollama to 0.30 or later")
    files = {"model.gguf": gguf, **({"adapter.gguf": adapter} if adapter else {})}
    total = sum(p.stat().st_size for p in files.values())
    done, uploaded, refs = 0, [], {}
    for label, path in files.items():
        digest = "sha256:" + (digests.get(path.name) or _sha256(path))
        refs[label] = digest
        if not client.has_blob(digest):
            def report(sent: int, _total: int, base: int = done, what: str = label) -> None:
                progress.fraction(base + sent, total, f"uploading {what}")

            client.push_blob(path, digest, report)
            uploaded.append(label)
        done += path.stat().st_size
        progress.fraction(done, total, f"{label} on server")
    payload = create_payload(name, refs, spec, version)
    client.create(payload, lambda status: progress.update(99, done, total, status))
    shown = client.show(name)
    if not shown:
        raise OllamaError(f"Ollama created {name} but /api/show does not know it.")
    progress.update(100, done, total, f"registered as {name}")
    return Registration(name=name, version=version, uploaded=uploaded)


def create_payload(name: str, refs: dict[str, str], spec: ModelSpec, server_version: str = "") -> dict[str, Any]:
    """The /api/create body: files by digest, parameters, and the Go template for servers older than 0.30."""
    payload: dict[str, Any] = {"model": name, "files": {"model.gguf": refs["model.gguf"]},
                               "parameters": spec.parameters, "stream": True}
    if "adapter.gguf" in refs:
        payload["adapters"] = {"adapter.gguf": refs["adapter.gguf"]}
    # From 0.30 Ollama renders the Jinja template embedded in the GGUF: the fine-tune's exact one, so a Go
    # TEMPLATE (an approximation) would only get in its way. Older servers need it or prompt bare.
    if spec.template is not None and not renders_jinja(server_version):
        payload["template"] = spec.template
    if spec.system:
        payload["system"] = spec.system
    return payload


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
