"""The unquantized fine-tune's greedy answers, kept on disk so a rerun of the demo does not compute them again.

A greedy answer (temperature 0) is a function of the base weights, the adapter, the dtype, the library versions
and the request (prompt, limits, stop strings); the key hashes all of them, so a changed store, question or
setting simply misses. The model itself is loaded only for a request the file cannot answer.

Usage::

    reference = CachedReference(base_dir, adapter_dir, workdir / "reference-answers.json")
    answer = complete(reference, GenerationRequest(prompt="質問：…\\n答え：", temperature=0.0))
    reference.close()
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lorag.atomic import atomic_write_text
from lorag.generate.base import GenerationRequest, Generator, Usage


class CachedReference:
    """The transformers fine-tune (base + PEFT adapter) as a Generator whose greedy answers are remembered in a file.

    ``hits`` counts the answers read from the file. An entry the reader stopped early (a base model's answer is
    cut at its first sentence) holds the text up to that point; a reader that wants more makes it generate again.
    """

    thinks = False

    def __init__(self, base: Path, adapter: Path, path: Path, dtype: str = "float32",
                 hash_cache: Path | None = None) -> None:
        import peft
        import torch
        import transformers

        from lorag.build.cache import hash_tree
        from lorag.generate.transformers import load_tokenizer

        self.base, self.adapter, self.path, self.dtype = base, adapter, path, dtype
        self.name = f"{base.name}+{adapter.name}"  # as TransformersGenerator names it
        self.usage = Usage()
        self.hits = 0
        self.supports_chat = bool(getattr(load_tokenizer(base, adapter), "chat_template", None))
        identity = {"base": hash_tree(base, hash_cache), "adapter": hash_tree(adapter, hash_cache), "dtype": dtype,
                    "versions": [torch.__version__, transformers.__version__, peft.__version__]}
        self.model_key = _digest(identity)
        self._model: Generator | None = None

    @property
    def loaded(self) -> bool:
        """Whether the transformers model has been loaded (it is only for answers the file lacks)."""
        return self._model is not None

    def known(self) -> int:
        """How many answers of this model (these weights, this dtype) the file holds."""
        return sum(1 for entry in self._entries().values() if entry.get("model") == self.model_key)

    def load(self) -> Generator:
        """The transformers model, loaded on first use."""
        if self._model is None:
            from lorag.generate.transformers import TransformersGenerator

            self._model = TransformersGenerator(self.base, self.adapter, dtype=self.dtype)
        return self._model

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """The remembered answer when there is one, else the model's (remembered when greedy)."""
        if request.temperature > 0:  # sampled answers differ from run to run: nothing to remember
            yield from self._generate(request)
            return
        key = _digest({"model": self.model_key, "request": asdict(request)})
        entry = self._entries().get(key)
        if entry is None:
            yield from self._generate(request, key)
            return
        self.usage = Usage(entry["prompt_tokens"], entry["completion_tokens"])
        self.hits += 1  # counted before the text is given: a reader that has enough stops at the yield
        if entry["text"]:
            yield entry["text"]
        if not entry["complete"]:  # the reader goes on past where the stored one stopped: generate the rest
            self.hits -= 1
            yield from _after(self._generate(request, key), len(entry["text"]))

    def close(self) -> None:
        """Free the model if one was loaded."""
        if self._model is not None:
            self._model.close()
            self._model = None

    def _generate(self, request: GenerationRequest, key: str | None = None) -> Iterator[str]:
        model = self.load()
        pieces: list[str] = []
        inner = model.stream(request)
        try:
            for piece in inner:
                pieces.append(piece)
                yield piece
        except GeneratorExit:
            inner.close()  # waits for the generation to stop, so the usage counts are final
            self.usage = model.usage
            if key is not None:
                self._remember(key, "".join(pieces), complete=False)
            raise
        self.usage = model.usage
        if key is not None:
            self._remember(key, "".join(pieces), complete=True)

    def _remember(self, key: str, text: str, complete: bool) -> None:
        entries = self._entries()
        entries[key] = {"model": self.model_key, "text": text, "complete": complete,
                        "prompt_tokens": self.usage.prompt_tokens, "completion_tokens": self.usage.completion_tokens}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(entries, ensure_ascii=False, indent=1, sort_keys=True) + "\n")

    def _entries(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # no file yet, or a damaged one: it is only a cache
        return data if isinstance(data, dict) else {}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _after(pieces: Iterator[str], skip: int) -> Iterator[str]:
    """``pieces`` without their first ``skip`` characters (greedy text repeats what was already given)."""
    for piece in pieces:
        if skip >= len(piece):
            skip -= len(piece)
            continue
        yield piece[skip:]
        skip = 0
