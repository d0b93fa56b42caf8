"""The transformers backend: a PEFT adapter on its base matches the merged model; streaming, stops, chat."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorag.errors import GenerationError
from lorag.generate.base import GenerationRequest, Generator, complete
from lorag.generate.transformers import TransformersGenerator, _cut_at_stop

pytestmark = pytest.mark.slow
TOLERANCE = 1e-4  # max abs logit difference, fp32, adapter-on-base vs merge_and_unload


@pytest.fixture(scope="module")
def tuned(tiny_qwen2: Path, tiny_qwen2_adapter: Path) -> TransformersGenerator:
    return TransformersGenerator(tiny_qwen2, tiny_qwen2_adapter, dtype="float32")


def test_adapter_on_base_matches_merged_logits(tuned: TransformersGenerator, tiny_qwen2: Path,
                                               tiny_qwen2_adapter: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_qwen2, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(tiny_qwen2_adapter)).merge_and_unload().eval()
    plain = AutoModelForCausalLM.from_pretrained(tiny_qwen2, dtype=torch.float32).eval()
    ids = tuned.encode(GenerationRequest(prompt="日本の首都は東京です。質問：日本の首都は？"))
    with torch.no_grad():
        ours, reference, untuned = tuned.model(ids).logits, merged(ids).logits, plain(ids).logits
    assert (ours - reference).abs().max().item() < TOLERANCE
    assert (ours - untuned).abs().max().item() > 100 * TOLERANCE  # the adapter really changes the model


def test_streams_a_chat_reply(tuned: TransformersGenerator) -> None:
    assert isinstance(tuned, Generator)
    assert tuned.supports_chat and tuned.name == "tiny-qwen2+lora-tiny-qwen2"
    request = GenerationRequest(messages=[{"role": "user", "content": "こんにちは"}], max_tokens=12, temperature=0.0)
    pieces = list(tuned.stream(request))
    assert pieces and tuned.usage.completion_tokens > 0
    assert tuned.usage.prompt_tokens == len(tuned.encode(request)[0])
    assert complete(tuned, request) == "".join(pieces)  # greedy is deterministic


def test_plain_prompt_and_sampling_seed(tuned: TransformersGenerator) -> None:
    request = GenerationRequest(prompt="質問：", max_tokens=8, temperature=0.8, seed=3)
    assert complete(tuned, request) == complete(tuned, request)


def test_stop_strings_cut_the_stream() -> None:
    import threading

    flag = threading.Event()
    assert "".join(_cut_at_stop(iter(["答え", "は東", "京。\n次", "の質問"]), ["\n"], flag)) == "答えは東京。"
    assert flag.is_set()
    flag = threading.Event()
    assert "".join(_cut_at_stop(iter(["ab", "<|e", "nd|>x"]), ["<|end|>"], flag)) == "ab"
    flag = threading.Event()
    assert "".join(_cut_at_stop(iter(["ab", "cd"]), [], flag)) == "abcd"


def test_stop_string_in_generation(tuned: TransformersGenerator) -> None:
    free = complete(tuned, GenerationRequest(prompt="質問：", max_tokens=16, temperature=0.0))
    stop = free[3:5]
    if not stop:
        pytest.skip("the random model produced too little text")
    cut = complete(tuned, GenerationRequest(prompt="質問：", max_tokens=16, temperature=0.0, stop=[stop]))
    assert cut == free[: free.index(stop)]


def test_bitsandbytes_needs_cuda(tiny_qwen2: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(GenerationError, match="needs a CUDA GPU"):
        TransformersGenerator(tiny_qwen2, quantization="4bit")


def test_base_model_without_template_refuses_chat(tiny_qwen2: Path, tmp_path: Path) -> None:
    import json
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(tiny_qwen2, bare)
    cfg = json.loads((bare / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(cfg))
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    gen = TransformersGenerator(bare, dtype="float32")
    assert gen.supports_chat is False
    with pytest.raises(GenerationError, match="no chat template"):
        list(gen.stream(GenerationRequest(messages=[{"role": "user", "content": "x"}])))


def test_bnb_config_means_what_it_says() -> None:
    from lorag.generate.transformers import bnb_config

    eight = bnb_config("8bit")
    assert eight.load_in_8bit is True and eight.load_in_4bit is False
    four = bnb_config("4bit")
    assert four.load_in_4bit is True and four.bnb_4bit_quant_type == "nf4" and not four.bnb_4bit_use_double_quant
    assert bnb_config("none") is None


@pytest.mark.parametrize(("requested", "cuda", "native", "used"), [
    ("bfloat16", True, True, "bfloat16"),  # Ampere and later
    ("bfloat16", True, False, "float16"),  # T4, V100, RTX 20: bfloat16 products would be emulated
    ("bfloat16", False, False, "bfloat16"),  # the CPU keeps the plan's two bytes per weight
    ("float32", True, False, "float32"),  # an explicit full precision stays
    ("float16", True, True, "float16"),
])
def test_half_dtype_avoids_emulated_bfloat16(requested: str, cuda: bool, native: bool, used: str) -> None:
    from lorag.generate.transformers import half_dtype

    assert half_dtype(requested, cuda, native) == used


def test_bnb_4bit_computes_in_the_chosen_dtype() -> None:
    import torch

    from lorag.generate.transformers import bnb_config

    assert bnb_config("4bit", "float16").bnb_4bit_compute_dtype == torch.float16
    assert bnb_config("4bit").bnb_4bit_compute_dtype == torch.bfloat16
