"""Hugging Face transformers backend: a model, or a PEFT LoRA adapter on its base, optionally bitsandbytes 4/8-bit.

A LoRA adapter is never handed to AutoModelForCausalLM: the base is loaded first, then
``PeftModel.from_pretrained(base_model, adapter_dir)`` applies the adapter on top.

Usage::

    gen = TransformersGenerator("models/base", adapter_dir="outputs/lora_X", quantization="4bit")
    print(complete(gen, GenerationRequest(messages=[{"role": "user", "content": "こんにちは"}])))
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lorag.errors import GenerationError
from lorag.generate.base import GenerationRequest, Usage


def half_dtype(requested: str, cuda: bool, bf16_native: bool) -> str:
    """The 16-bit dtype to compute in: bfloat16 becomes float16 on a GPU without native bfloat16 (before Ampere:
    T4, V100, RTX 20), where bfloat16 matrix products are emulated; the same two bytes per weight either way."""
    return "float16" if requested == "bfloat16" and cuda and not bf16_native else requested


def _bf16_native() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))


def bnb_config(quantization: str, compute: str = "bfloat16") -> Any:
    """BitsAndBytesConfig for "4bit" (nf4, ``compute`` dtype) or "8bit" (LLM.int8, really 8-bit); None for "none"."""
    if quantization == "none":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    if quantization == "4bit":
        # Single-level absmax (no double quantization) is what lorag.inspect.memory predicts.
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                  bnb_4bit_compute_dtype=getattr(torch, compute), bnb_4bit_use_double_quant=False)
    raise GenerationError(f"unknown quantization {quantization!r}.", "Use none, 8bit or 4bit.")


def quiet_transformers() -> None:
    """No "Loading weights" progress bar on the terminal: the caller shows its own progress (debug logs keep it)."""
    import logging

    from transformers.utils import logging as hf_logging

    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        hf_logging.disable_progress_bar()


def load_model(model_dir: Path, adapter_dir: Path | None = None, quantization: str = "none",
               dtype: str = "bfloat16", device: str | None = None) -> Any:
    """Load the base model (bitsandbytes when asked), then the PEFT adapter on top of it; eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    cuda = torch.cuda.is_available()
    if quantization != "none" and not cuda:
        raise GenerationError(f"llm.quantization: {quantization} needs a CUDA GPU (bitsandbytes), and none was found.",
                              "Set llm.quantization: none, or build a GGUF with `lorag model build`.")
    on_gpu = cuda and not (device or "").startswith("cpu")
    dtype = half_dtype(dtype, on_gpu, on_gpu and _bf16_native())
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    if quantization != "none":
        kwargs |= {"quantization_config": bnb_config(quantization, dtype), "device_map": {"": 0}}
    elif device or cuda:
        kwargs["device_map"] = {"": device or "cuda:0"}
    quiet_transformers()
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), **kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        raise GenerationError(f"transformers could not load {model_dir}: {exc}".splitlines()[0],
                              "Check that it is a complete Hugging Face model directory.") from exc
    if adapter_dir is not None:
        from peft import PeftModel

        try:
            with warnings.catch_warnings():  # peft asks transformers a deprecated question; not the user's concern
                warnings.simplefilter("ignore", FutureWarning)
                model = PeftModel.from_pretrained(model, str(adapter_dir))
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise GenerationError(f"PEFT could not apply adapter {adapter_dir} to {model_dir}: {exc}".splitlines()[0],
                                  "Check that the adapter was trained on this base.") from exc
    model.eval()
    return model


def load_tokenizer(model_dir: Path, adapter_dir: Path | None = None) -> Any:
    """The tokenizer from the adapter dir when it has one (fine-tunes often change the template), else the base's."""
    from transformers import AutoTokenizer

    source = adapter_dir if adapter_dir and (adapter_dir / "tokenizer_config.json").exists() else model_dir
    tok = AutoTokenizer.from_pretrained(str(source))
    if adapter_dir and (adapter_dir / "chat_template.jinja").exists():
        tok.chat_template = (adapter_dir / "chat_template.jinja").read_text(encoding="utf-8")
    return tok


class TransformersGenerator:
    """A transformers model (plus optional PEFT adapter) that streams text with TextIteratorStreamer."""

    thinks = False

    def __init__(self, model_dir: Path | str, adapter_dir: Path | str | None = None, quantization: str = "none",
                 dtype: str = "bfloat16", device: str | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.adapter_dir = Path(adapter_dir) if adapter_dir else None
        self.name = self.model_dir.name + (f"+{self.adapter_dir.name}" if self.adapter_dir else "")
        self.usage = Usage()
        self.tokenizer = load_tokenizer(self.model_dir, self.adapter_dir)
        self.model = load_model(self.model_dir, self.adapter_dir, quantization, dtype, device)
        self.supports_chat = bool(getattr(self.tokenizer, "chat_template", None))

    def close(self) -> None:
        """Drop the model so its memory (GPU memory included) can be freed."""
        self.model = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # torch missing means nothing was loaded on a GPU
            pass

    def encode(self, request: GenerationRequest) -> Any:
        """Token ids (1 × n tensor on the model's device) for a chat or a plain prompt."""
        if request.messages is not None:
            if not self.supports_chat:
                raise GenerationError(f"{self.name} has no chat template, so it cannot take chat messages.",
                                      "Send a plain prompt, or add a chat template to the model.")
            ids = self.tokenizer.apply_chat_template(request.messages, add_generation_prompt=True,
                                                     return_tensors="pt", return_dict=True)["input_ids"]
        else:
            ids = self.tokenizer(request.prompt or "", return_tensors="pt")["input_ids"]
        return ids.to(self.model.device)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Generate in a worker thread and yield decoded pieces, cutting at the first stop string."""
        from transformers import TextIteratorStreamer

        self.usage = Usage()
        ids = self.encode(request)
        self.usage.prompt_tokens = int(ids.shape[1])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop_flag = threading.Event()
        kwargs = self._generate_kwargs(request, ids, streamer, stop_flag)
        errors: list[BaseException] = []
        worker = threading.Thread(target=self._run, args=(kwargs, errors), daemon=True)
        worker.start()
        try:
            yield from _cut_at_stop(streamer, request.stop, stop_flag)
        finally:
            stop_flag.set()
            worker.join()
        if errors:
            raise GenerationError(f"{self.name} failed while generating: {errors[0]}") from errors[0]

    def _run(self, kwargs: dict[str, Any], errors: list[BaseException]) -> None:
        import torch

        try:
            with torch.inference_mode():
                out = self.model.generate(**kwargs)
            self.usage.completion_tokens = int(out.shape[1]) - self.usage.prompt_tokens
        except Exception as exc:  # reported to the caller's thread, which raises GenerationError
            errors.append(exc)
            kwargs["streamer"].end()

    def _generate_kwargs(self, request: GenerationRequest, ids: Any, streamer: Any,
                         stop_flag: threading.Event) -> dict[str, Any]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> bool:
                return stop_flag.is_set()

        if request.seed is not None:
            torch.manual_seed(request.seed)
        sample = request.temperature > 0
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "streamer": streamer,
                                  "max_new_tokens": request.max_tokens, "do_sample": sample,
                                  "stopping_criteria": StoppingCriteriaList([_Stop()]),
                                  "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id}
        if sample:
            kwargs |= {"temperature": request.temperature, "top_p": request.top_p}
        return kwargs


def _cut_at_stop(pieces: Iterator[str], stops: list[str], stop_flag: threading.Event) -> Iterator[str]:
    """Pass text through until a stop string appears; hold back a tail that could start one."""
    held = ""
    keep = max((len(s) for s in stops), default=1) - 1
    for piece in pieces:
        if stop_flag.is_set():
            continue  # drain the streamer so the worker can finish
        held += piece
        hits = [held.find(s) for s in stops if s in held]
        if hits:
            if min(hits):
                yield held[:min(hits)]
            held = ""
            stop_flag.set()
            continue
        if len(held) > keep:
            cut = len(held) - keep
            yield held[:cut]
            held = held[cut:]
    if held and not stop_flag.is_set():
        yield held
