"""Held-out behaviour score: how much of the unquantized fine-tune's greedy output a built GGUF reproduces.

For each held-out prompt the reference (the fine-tune in transformers, fp32 on CPU: base + unmerged PEFT adapter,
or the merged weights) greedy-decodes up to ``max_new_tokens`` tokens, stopping after an end-of-generation token.
The candidate GGUF (llama.cpp, optionally with its GGUF LoRA) greedy-decodes from the same prompt token ids.

* ``agreement`` = mean over prompts of (tokens the candidate matches before its first divergence) /
  (length of the reference's output). 1.0: every answer reproduced token for token.
* ``exact`` = how many prompts the candidate reproduced entirely (first N tokens identical, N = reference length).

Usage::

    ref = FineTuneReference(base_dir, adapter_dir, tokenizer_dir)
    expected = reference_outputs(ref, find_eval_prompts(adapter_dir))
    score = score_gguf(expected, gguf, lora=None)        # -> Behaviour(agreement=0.94, exact=7, prompts=8, ...)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorag.build.eval_prompts import MAX_PROMPTS, EvalPrompts

MAX_NEW_TOKENS = 32
SHOWN_CHARS = 80  # how much of each prompt/answer the build record keeps for the summary


class FineTuneReference:
    """The unquantized fine-tune in transformers (fp32, CPU), loaded once and shared by every candidate."""

    def __init__(self, model_dir: Path, adapter_dir: Path | None, tokenizer_dir: Path) -> None:
        self.model_dir, self.adapter_dir, self.tokenizer_dir = model_dir, adapter_dir, tokenizer_dir
        self.kind = "transformers fp32, " + ("base + PEFT adapter (unmerged)" if adapter_dir else "merged weights")
        self._model: Any = None
        self._tokenizer: Any = None
        self.expected: dict[str, Expected] = {}  # reference outputs per prompt set, computed once

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(self.tokenizer_dir))
        return self._tokenizer

    @property
    def model(self) -> Any:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM

            from lorag.generate.transformers import quiet_transformers

            quiet_transformers()
            model: Any = AutoModelForCausalLM.from_pretrained(str(self.model_dir), dtype=torch.float32)
            if self.adapter_dir is not None:
                import warnings

                from peft import PeftModel

                with warnings.catch_warnings():  # peft asks transformers a deprecated question; not the user's concern
                    warnings.simplefilter("ignore", FutureWarning)
                    model = PeftModel.from_pretrained(model, str(self.adapter_dir))
            self._model = model.eval()
        return self._model

    def logits(self, ids: list[int]) -> Any:
        """fp64 numpy logits for every position of ``ids``."""
        import torch

        with torch.no_grad():
            return self.model(torch.tensor([ids])).logits[0].double().numpy()

    def eog_ids(self) -> set[int]:
        """Token ids that end a generation (the tokenizer's EOS and the generation config's)."""
        ids: set[int] = set()
        for value in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            ids.update(value if isinstance(value, list) else [value] if isinstance(value, int) else [])
        return ids

    def greedy(self, ids: list[int], max_new_tokens: int, eog: set[int]) -> list[int]:
        """Greedy continuation of ``ids`` (KV cache, logits of the last position only), ending after an EOG id."""
        import torch

        out: list[int] = []
        with torch.no_grad():
            step = self.model(torch.tensor([ids]), use_cache=True, logits_to_keep=1)
            # transformers ≥ 5.2x names the KV cache ``cache`` (``past_key_values`` before, deprecated since).
            name = "cache" if hasattr(step, "cache") else "past_key_values"
            while len(out) < max_new_tokens:
                token = int(step.logits[0, -1].argmax())
                out.append(token)
                if token in eog:
                    break
                step = self.model(torch.tensor([[token]]), use_cache=True, **{name: getattr(step, name)})
        return out

    def release(self) -> None:
        """Drop the model (its fp32 weights are the largest allocation of a build's verify stage)."""
        self._model = None


@dataclass
class Expected:
    """The reference's greedy outputs on one prompt set: what every candidate is compared with."""

    source: str
    generic: bool
    prompts: list[list[int]]
    outputs: list[list[int]]
    texts: list[tuple[str, str]]  # (prompt tail, reference answer) for the summary
    eog: set[int]
    max_new_tokens: int
    reference: str
    skipped: int = 0
    prompts_key: str = ""

    @property
    def digest(self) -> str:
        """Identifies the prompt set and decoding length (a cached build's score is reused only when it matches)."""
        return prompts_digest(self.prompts, self.max_new_tokens)


def prompts_digest(prompts: list[list[int]], max_new_tokens: int) -> str:
    """sha256 (16 hex) of the prompt token ids and the decoding length."""
    blob = json.dumps({"prompts": prompts, "max_new_tokens": max_new_tokens}, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prompts_key(prompts: EvalPrompts, limit: int = MAX_PROMPTS, max_new_tokens: int = MAX_NEW_TOKENS) -> str:
    """sha256 (16 hex) of the prompt lines as read and the decoding length: a cache check that needs no tokenizer."""
    blob = json.dumps({"lines": prompts.lines[:limit], "max_new_tokens": max_new_tokens}, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prompt_ids(tokenizer: Any, prompts: EvalPrompts, limit: int = MAX_PROMPTS) -> list[list[int]]:
    """Token ids of each prompt, with the BOS the model expects exactly once."""
    result = []
    bos = getattr(tokenizer, "bos_token", None)
    for text in prompts.texts(tokenizer, limit):
        already = bool(bos) and text.startswith(str(bos))  # a rendered chat template starts with it
        ids: list[int] = tokenizer(text, add_special_tokens=not already)["input_ids"]
        result.append(ids)
    return result


def reference_outputs(ref: FineTuneReference, prompts: EvalPrompts, max_new_tokens: int = MAX_NEW_TOKENS,
                      limit: int = MAX_PROMPTS) -> Expected:
    """The transformers reference's greedy outputs on ``prompts`` (computed once per reference and prompt set)."""
    key = f"{prompts.source}:{limit}:{max_new_tokens}"
    if key not in ref.expected:
        ids = prompt_ids(ref.tokenizer, prompts, limit)
        eog = ref.eog_ids()
        outputs = [ref.greedy(p, max_new_tokens, eog) for p in ids]
        ref.expected[key] = _expected(ref.tokenizer, prompts, ids, outputs, eog, max_new_tokens, ref.kind)
    return ref.expected[key]


def gguf_reference_outputs(tokenizer_dir: Path, prompts: EvalPrompts, f16: Path, lora: Path | None = None,
                           max_new_tokens: int = MAX_NEW_TOKENS, limit: int = MAX_PROMPTS) -> Expected:
    """Greedy outputs of the fine-tune's F16 GGUF (plus its F16 GGUF LoRA) in llama.cpp: the fast reference."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ids = prompt_ids(tokenizer, prompts, limit)
    eog = _eog_of(tokenizer, tokenizer_dir)
    outputs = greedy_gguf(f16, lora, ids, max_new_tokens, eog)
    kind = f"llama.cpp F16 GGUF{' + F16 GGUF LoRA' if lora else ''} ({f16.name})"
    return _expected(tokenizer, prompts, ids, outputs, eog, max_new_tokens, kind)


def _eog_of(tokenizer: Any, model_dir: Path) -> set[int]:
    from lorag.inspect.files import read_json_or_empty

    ids: set[int] = set()
    configured = read_json_or_empty(model_dir / "generation_config.json").get("eos_token_id")
    for value in (tokenizer.eos_token_id, configured):
        ids.update(value if isinstance(value, list) else [value] if isinstance(value, int) else [])
    return ids


def _expected(tokenizer: Any, prompts: EvalPrompts, ids: list[list[int]], outputs: list[list[int]], eog: set[int],
              max_new_tokens: int, kind: str) -> Expected:
    def text(ids: list[int]) -> str:
        return str(tokenizer.decode(ids, skip_special_tokens=True))

    texts = [(_tail(text(p)), _head(text(o))) for p, o in zip(ids, outputs, strict=True)]
    return Expected(prompts.source, prompts.generic, ids, outputs, texts, eog, max_new_tokens, kind, prompts.skipped,
                    prompts_key(prompts, len(ids), max_new_tokens))


@dataclass
class Behaviour:
    """A candidate's agreement with the reference's greedy output on the held-out prompts."""

    agreement: float
    exact: int
    prompts: int
    source: str
    generic: bool
    digest: str
    max_new_tokens: int
    reference: str
    answers: list[dict[str, Any]] = field(default_factory=list)
    prompts_key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"agreement": round(self.agreement, 4), "exact": self.exact, "prompts": self.prompts,
                "source": self.source, "generic": self.generic, "digest": self.digest, "prompts_key": self.prompts_key,
                "max_new_tokens": self.max_new_tokens, "reference": self.reference, "answers": self.answers}


def agreement(reference: list[int], candidate: list[int]) -> float:
    """Share of ``reference`` the candidate reproduces before its first divergence (1.0 = identical)."""
    if not reference:
        return 1.0
    matched = 0
    for want, got in zip(reference, candidate, strict=False):
        if want != got:
            break
        matched += 1
    return matched / len(reference)


def score_outputs(expected: Expected, outputs: list[list[int]], texts: list[str] | None = None) -> Behaviour:
    """Behaviour of a candidate whose greedy outputs on ``expected.prompts`` are ``outputs`` (decoded: ``texts``)."""
    shares = [agreement(r, c) for r, c in zip(expected.outputs, outputs, strict=True)]
    answers = []
    for (prompt, ref_text), text, share in zip(expected.texts, texts or [""] * len(shares), shares, strict=True):
        text = _head(text)
        answers.append({"prompt": prompt, "reference": ref_text, "candidate": text, "agreement": round(share, 4)})
    return Behaviour(agreement=sum(shares) / max(len(shares), 1), exact=sum(s == 1.0 for s in shares),
                     prompts=len(shares), source=expected.source, generic=expected.generic, digest=expected.digest,
                     max_new_tokens=expected.max_new_tokens, reference=expected.reference, answers=answers,
                     prompts_key=expected.prompts_key)


def score_gguf(expected: Expected, gguf: Path, lora: Path | None = None) -> Behaviour:
    """Score a GGUF (+ LoRA) against the reference's greedy outputs, teacher-forced: one batch per prompt.

    The candidate's greedy output agrees with the reference's for exactly as long as its argmax, fed the
    reference's tokens, keeps naming the reference's next token; so one forward pass over prompt + reference
    answer gives the same score as decoding token by token, at the cost of a prefill.
    """
    from llama_cpp import Llama

    from lorag.generate.llamacpp import quiet_llama_logs

    quiet_llama_logs()
    longest = max((len(p) + len(o) for p, o in zip(expected.prompts, expected.outputs, strict=True)), default=0)
    kwargs: dict[str, Any] = {"lora_path": str(lora)} if lora else {}
    llm = Llama(model_path=str(gguf), n_ctx=max(256, longest + 8), n_batch=512, verbose=False, seed=0,
                **kwargs)
    try:
        outputs, texts = [], []
        for prompt, reference in zip(expected.prompts, expected.outputs, strict=True):
            predicted = _forced_argmax(llm, prompt, reference)
            matched = int(agreement(reference, predicted) * len(reference) + 0.5)
            outputs.append(predicted[: matched + 1])  # the shared prefix, then the candidate's own next token
            texts.append(_diverged_text(llm, reference, predicted, matched, expected.eog))
        return score_outputs(expected, outputs, texts)
    finally:
        llm.close()


def _forced_argmax(llm: Any, prompt: list[int], reference: list[int]) -> list[int]:
    """The candidate's argmax at each answer position, given the prompt and the reference's tokens before it."""
    import llama_cpp
    import numpy as np

    llm.reset()
    llm.eval(prompt[:-1])
    # The last prompt token and the reference answer but its last token, with logits at every position.
    batch = [prompt[-1], *reference[:-1]]
    llm._batch.set_batch(batch=batch, n_past=llm.n_tokens, logits_all=True)
    llm._ctx.decode(llm._batch)
    llm.n_tokens += len(batch)
    vocab = llm.n_vocab()
    return [int(np.argmax(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i), shape=(vocab,))))
            for i in range(len(batch))]


def _diverged_text(llm: Any, reference: list[int], predicted: list[int], matched: int, eog: set[int]) -> str:
    """The agreed text, then the candidate's first different token in ⟨⟩ (its own continuation is not decoded)."""
    def text(ids: list[int]) -> str:
        return str(llm.detokenize([i for i in ids if i not in eog]).decode("utf-8", errors="replace"))

    if matched >= len(reference):
        return text(reference)
    other = predicted[matched]
    return text(reference[:matched]) + "⟨" + ("<end>" if other in eog else text([other])) + "…⟩"


def greedy_gguf(gguf: Path, lora: Path | None, prompts: list[list[int]], max_new_tokens: int,
                eog: set[int]) -> list[list[int]]:
    """Greedy continuations of each prompt in llama.cpp (one model load for all)."""
    from llama_cpp import Llama

    from lorag.generate.llamacpp import quiet_llama_logs

    quiet_llama_logs()
    longest = max((len(p) for p in prompts), default=0)
    kwargs: dict[str, Any] = {"lora_path": str(lora)} if lora else {}
    llm = Llama(model_path=str(gguf), n_ctx=max(256, longest + max_new_tokens + 8), n_batch=512, verbose=False,
                seed=0, **kwargs)
    try:
        return [_llama_greedy(llm, p, max_new_tokens, eog) for p in prompts]
    finally:
        llm.close()


def _llama_greedy(llm: Any, ids: list[int], max_new_tokens: int, eog: set[int]) -> list[int]:
    import llama_cpp
    import numpy as np

    llm.reset()
    llm.eval(ids)
    out: list[int] = []
    vocab = llm.n_vocab()
    while len(out) < max_new_tokens:
        # Without logits_all, llama-cpp-python keeps no score rows: read the last position's logits from llama.cpp.
        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(vocab,))
        token = int(np.argmax(row))
        out.append(token)
        if token in eog:
            break
        llm.eval([token])
    return out


def _tail(text: str) -> str:
    flat = text.replace("\n", " ").strip()
    return flat if len(flat) <= SHOWN_CHARS else "…" + flat[-SHOWN_CHARS:]


def _head(text: str) -> str:
    flat = text.replace("\n", " ").strip()
    return flat if len(flat) <= SHOWN_CHARS else flat[:SHOWN_CHARS] + "…"
