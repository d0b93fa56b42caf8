"""Chat-template families → Ollama Go TEMPLATE, stop strings, sampling; Modelfile text; quantization names."""

from __future__ import annotations

import pytest

from lorag.build.quantize import FTYPES, normalize_qtype
from lorag.errors import BuildError
from lorag.registry.modelfile import model_spec, render_modelfile
from lorag.registry.templates import detect_family

DEEPSEEK_R1 = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == 'user' %}"
    "{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' %}"
    "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor -%}"
    "{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}"
)
LLAMA3 = (
    "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
    "message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
GEMMA = (
    "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim "
    "+ '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
CHATML = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}"


@pytest.mark.parametrize(("template", "family", "stop"), [
    (DEEPSEEK_R1, "deepseek-r1", "<｜end▁of▁sentence｜>"),
    (LLAMA3, "llama3", "<|eot_id|>"),
    (GEMMA, "gemma", "<end_of_turn>"),
    (CHATML, "chatml", "<|im_end|>"),
])
def test_families_and_stops(template: str, family: str, stop: str) -> None:
    spec = model_spec(template, 8192, 0.2, 0.9)
    assert spec.family == family
    assert spec.parameters["stop"][0] == stop
    assert spec.parameters["num_ctx"] == 8192
    assert spec.template is not None and ".System" in spec.template


def test_deepseek_r1_stops_and_sampling() -> None:
    spec = model_spec(DEEPSEEK_R1, 4096, 0.2, 0.9)
    assert spec.parameters["stop"] == ["<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"]
    assert (spec.parameters["temperature"], spec.parameters["top_p"]) == (0.6, 0.95)
    assert "<｜Assistant｜><think>\n" in (spec.template or "")


def test_unknown_template_gets_no_template_and_a_note() -> None:
    spec = model_spec("{{ messages[0]['content'] }}", 4096, 0.2, 0.9)
    assert spec.template is None and spec.family is None
    assert "not recognised" in spec.notes[0]
    assert detect_family(None) is None


def test_modelfile_text() -> None:
    spec = model_spec(CHATML, 4096, 0.2, 0.95)
    text = render_modelfile("model-Q4_K_M.gguf", spec)
    lines = text.splitlines()
    assert lines[0] == "FROM ./model-Q4_K_M.gguf"
    assert 'PARAMETER stop "<|im_end|>"' in lines and 'PARAMETER stop "<|im_start|>"' in lines
    assert "PARAMETER num_ctx 4096" in lines and "PARAMETER temperature 0.2" in lines
    assert text.count('TEMPLATE """') == 1
    with_adapter = render_modelfile("model-Q4_K_M.gguf", spec, "adapter-F16.gguf")
    assert with_adapter.splitlines()[1] == "ADAPTER ./adapter-F16.gguf"


def test_quantization_names_match_llama_cpp() -> None:
    import llama_cpp

    for name, value in FTYPES.items():
        const = "LLAMA_FTYPE_MOSTLY_F16" if name == "F16" else f"LLAMA_FTYPE_MOSTLY_{name}"
        assert getattr(llama_cpp, const) == value
    assert normalize_qtype("q4_k_m") == "Q4_K_M"
    with pytest.raises(BuildError, match="Choose one of: F16, Q8_0, Q4_K_S, Q4_K_M, Q5_K_M, Q6_K"):
        normalize_qtype("Q2_K")
