"""Measure how closely a GGUF reproduces the unquantized fine-tune: mean KL divergence and top-1 agreement."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Short, fixed and bilingual so Japanese tokens (the product's language) and English both count.
PROBE_TEXT = (
    "社内規程によると、有給休暇の申請は取得日の三営業日前までに上長へ提出する必要があります。"
    " The quarterly report is due on the last Friday of the month, and late submissions need approval."
)
SAMPLE_PROMPT = "日本の首都は"
F16_KL_LIMIT = 1e-3  # above this an F16 conversion is wrong, not merely lossy


@dataclass
class Fidelity:
    """Agreement between a GGUF and the reference model on the probe text."""

    kl_mean: float | None
    top1: float | None
    tokens: int = 0
    sample: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kl_mean": self.kl_mean, "top1": self.top1, "tokens": self.tokens, "sample": self.sample,
                "notes": self.notes}


def probe_ids(tokenizer_dir: Path) -> list[int]:
    """Token ids of the probe text under the fine-tune's tokenizer."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ids: list[int] = tok(PROBE_TEXT, add_special_tokens=False)["input_ids"]
    return ids


def reference_logits(model_dir: Path, ids: list[int], adapter_dir: Path | None = None) -> Any:
    """fp32 logits of the HF model (optionally with an unmerged PEFT adapter) for ``ids``."""
    import torch
    from transformers import AutoModelForCausalLM

    from lorag.generate.transformers import quiet_transformers

    quiet_transformers()
    model: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double().numpy()
    del model
    return logits


def gguf_logits(gguf: Path, ids: list[int], lora: Path | None = None, threads: int = 0) -> tuple[Any, str]:
    """llama.cpp logits for every position of ``ids`` plus a short greedy sample."""
    import numpy as np
    from llama_cpp import Llama

    from lorag.generate.llamacpp import quiet_llama_logs

    quiet_llama_logs()
    kwargs: dict[str, Any] = {"lora_path": str(lora)} if lora else {}
    llm = Llama(model_path=str(gguf), logits_all=True, n_ctx=max(128, len(ids) + 32), n_batch=512,
                n_threads=threads or None, verbose=False, seed=0, **kwargs)
    try:
        llm.eval(ids)
        logits = np.array(llm.scores[: len(ids)], dtype=np.float64)
        llm.reset()
        out = llm.create_completion(SAMPLE_PROMPT, max_tokens=12, temperature=0.0, top_k=1)
        sample = str(out["choices"][0]["text"])  # type: ignore[index]
    finally:
        llm.close()
    return logits, sample


def compare(reference: Any, candidate: Any) -> tuple[float, float]:
    """Mean KL(reference ‖ candidate) over positions and the share of positions with the same top token."""
    import numpy as np

    vocab = min(reference.shape[-1], candidate.shape[-1])
    ref, cand = reference[:, :vocab], candidate[:, :vocab]
    ref_logp = ref - _logsumexp(ref)
    cand_logp = cand - _logsumexp(cand)
    kl = (np.exp(ref_logp) * (ref_logp - cand_logp)).sum(axis=-1)
    top1 = (ref.argmax(axis=-1) == cand.argmax(axis=-1)).mean()
    return float(max(kl.mean(), 0.0)), float(top1)


def _logsumexp(x: Any) -> Any:
    import numpy as np

    peak = x.max(axis=-1, keepdims=True)
    return peak + np.log(np.exp(x - peak).sum(axis=-1, keepdims=True))


def measure(reference: Any, ids: list[int], gguf: Path, lora: Path | None = None) -> Fidelity:
    """Fidelity of one GGUF (optionally with a GGUF LoRA) against precomputed reference logits."""
    logits, sample = gguf_logits(gguf, ids, lora)
    kl, top1 = compare(reference, logits)
    return Fidelity(kl_mean=kl, top1=top1, tokens=len(ids), sample=sample)


def fits_in_memory(weights_bytes: int, dtype_bytes: int = 2) -> bool:
    """Whether an fp32 copy of the model plus a GGUF fits comfortably in available RAM."""
    import psutil

    needed = weights_bytes * (4 / dtype_bytes) + weights_bytes
    return needed < 0.6 * psutil.virtual_memory().available
