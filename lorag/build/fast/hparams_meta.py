"""The architecture keys llama.cpp's converter writes for llama, qwen2 and gemma3 (set_gguf_parameters).

Reads the model's hyperparameters as the converter sees them (transformers' AutoConfig, as a dict) and
refuses, with NativeUnsupported, every option those three families do not use here (experts, M-RoPE, YaRN,
pooling heads, ...), so that such a model goes through the converter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lorag.build.fast.general_meta import NativeUnsupported
from lorag.build.fast.gguf_values import KvList

FILE_TYPE_F16 = 1
_UNSUPPORTED_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok",
                     "num_experts_per_token", "top_k_experts", "n_group", "topk_group", "score_function",
                     "scoring_func", "score_func", "moe_router_activation", "moe_router_activation_func",
                     "expert_selection_fn", "classifier_pooling", "draft_vocab_size", "transformer_layer_config",
                     "llm_config", "lm_config", "thinker_config", "language_config", "lfm", "text_config")


# Keys transformers' config classes would fill in with a default when config.json lacks them: without them
# AutoConfig's view (what the converter reads) could differ from the file, so such a model goes to the converter.
_REQUIRED = ("architectures", "num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads",
             "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "vocab_size")
_REQUIRED_GEMMA3 = ("head_dim", "sliding_window")


def load_hparams(model_dir: Path) -> dict[str, Any]:
    """The converter's hparams (AutoConfig.from_pretrained(dir).to_dict()) for the three families, from
    config.json alone: the keys it reads are the file's, plus the head_dim LlamaConfig derives.

    Importing transformers costs seconds; the equality with AutoConfig is checked in the tests.
    """
    path = model_dir / "config.json"
    try:
        hparams: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NativeUnsupported(f"cannot read {path}: {exc}") from exc
    for key in _UNSUPPORTED_KEYS:
        if hparams.get(key) is not None:
            raise NativeUnsupported(f"config key {key}")
    arch = str((hparams.get("architectures") or ["?"])[0])
    required = _REQUIRED + (_REQUIRED_GEMMA3 if arch == "Gemma3ForCausalLM" else ())
    missing = [k for k in required if hparams.get(k) is None]
    if "rope_parameters" not in hparams and "rope_theta" not in hparams:
        missing.append("rope_theta")
    if missing or hparams.get("sliding_window_pattern") == 1:
        raise NativeUnsupported(f"config.json lacks {', '.join(missing) or 'a sliding window pattern'}")
    if arch == "LlamaForCausalLM" and hparams.get("head_dim") is None:
        hparams["head_dim"] = hparams["hidden_size"] // hparams["num_attention_heads"]
    return hparams


def find(hparams: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The converter's find_hparam(optional=True): the value of the first key present."""
    key = next((k for k in keys if k in hparams), None)
    return None if key is None else hparams[key]


def rope_parameters(hparams: dict[str, Any]) -> dict[str, Any]:
    """TextModel.__init__'s rope_parameters, with the global values mirrored in."""
    rope = dict(hparams.get("rope_parameters", hparams.get("rope_scaling")) or {})
    theta = find(hparams, ("global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta",
                           "rotary_emb_base"))
    local = find(hparams, ("local_rope_theta", "rope_local_theta", "rope_theta_local", "swa_rope_theta",
                           "rope_local_base_freq"))
    partial = find(hparams, ("partial_rotary_factor", "rope_pct", "rope_percent"))
    original = find(hparams, ("original_max_position_embeddings",))
    if "full_attention" not in rope and "sliding_attention" not in rope:
        if local is not None:
            rope["sliding_attention"] = {"rope_theta": local}
        if "rope_theta" not in rope and theta is not None:
            rope["rope_theta"] = theta
        if "rope_type" not in rope and (kind := rope.get("type")) is not None:
            rope["rope_type"] = kind
        if "partial_rotary_factor" not in rope and partial is not None:
            rope["partial_rotary_factor"] = partial
        if "original_max_position_embeddings" not in rope and original is not None:
            rope["original_max_position_embeddings"] = original
    return rope


def _count(kv: KvList, key: str, value: Any) -> None:
    if not isinstance(value, int):
        raise NativeUnsupported(f"{key} is not a single number")
    kv.u32(key, value)


def _text_model(kv: KvList, arch: str, hp: dict[str, Any], rope: dict[str, Any]) -> None:
    """TextModel.set_gguf_parameters for a dense decoder."""
    _count(kv, f"{arch}.block_count", find(hp, ("n_layers", "num_hidden_layers", "n_layer", "num_layers")))
    for keys, name in (
        (("max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length",
          "model_max_length"), "context_length"),
        (("hidden_size", "n_embd", "dim"), "embedding_length"),
        (("prefix_dense_intermediate_size", "dense_intermediate_size", "intermediate_size", "n_inner",
          "hidden_dim"), "feed_forward_length"),
        (("num_attention_heads", "n_head", "n_heads"), "attention.head_count"),
        (("num_key_value_heads", "n_kv_heads"), "attention.head_count_kv"),
    ):
        if (value := find(hp, keys)) is not None:
            _count(kv, f"{arch}.{name}", value)
    if hp.get("is_causal") is False:
        raise NativeUnsupported("non-causal attention")
    params = rope.get("full_attention", rope)
    kind = params.get("rope_type")
    if kind == "linear" and params.get("factor") is not None:
        kv.string(f"{arch}.rope.scaling.type", "linear")
        kv.f32(f"{arch}.rope.scaling.factor", params["factor"])
    elif kind is not None and kind != "default" and str(kind).lower() != "llama3":
        raise NativeUnsupported(f"RoPE type {kind}")
    if "mrope_section" in rope:
        raise NativeUnsupported("M-RoPE")
    if (theta := params.get("rope_theta")) is not None:
        kv.f32(f"{arch}.rope.freq_base", theta)
    if (local := rope.get("sliding_attention", {}).get("rope_theta")) is not None:
        kv.f32(f"{arch}.rope.freq_base_swa", local)
    if (eps := find(hp, ("rms_norm_eps", "norm_eps"))) is not None:
        kv.f32(f"{arch}.attention.layer_norm_rms_epsilon", eps)
    if (eps := find(hp, ("layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"))) is not None:
        kv.f32(f"{arch}.attention.layer_norm_epsilon", eps)
    if (head_dim := hp.get("head_dim")) is not None:
        kv.u32(f"{arch}.attention.key_length", head_dim)
        kv.u32(f"{arch}.attention.value_length", head_dim)
    kv.u32("general.file_type", FILE_TYPE_F16)


def add_hparams(kv: KvList, arch: str, hp: dict[str, Any], model_dir: Path) -> None:
    """The family's set_gguf_parameters: the shared keys, then what llama / qwen2 / gemma3 add or re-set."""
    rope = rope_parameters(hp)
    _text_model(kv, arch, hp, rope)
    if arch == "llama":
        kv.u32("llama.vocab_size", hp["vocab_size"])
        rope_dim = hp.get("head_dim")
        if rope_dim is None:
            rope_dim = hp["hidden_size"] // hp["num_attention_heads"]
        kv.u32("llama.rope.dimension_count", rope_dim)
    elif arch == "qwen2":
        if (model_dir / "modules.json").is_file():
            raise NativeUnsupported("sentence-transformers pooling")
    elif arch == "gemma3":
        _gemma3(kv, hp, rope)


def _gemma3(kv: KvList, hp: dict[str, Any], rope: dict[str, Any]) -> None:
    kv.u32("gemma3.context_length", hp.get("max_position_embeddings", 131072))
    _count(kv, "gemma3.attention.head_count", hp.get("num_attention_heads", 8))
    kv.f32("gemma3.attention.layer_norm_rms_epsilon", hp.get("rms_norm_eps", 1e-6))
    kv.u32("gemma3.attention.key_length", hp.get("head_dim", 256))
    kv.u32("gemma3.attention.value_length", hp.get("head_dim", 256))
    kv.f32("gemma3.rope.freq_base", rope.get("full_attention", rope).get("rope_theta", 1_000_000.0))
    if hp.get("attn_logit_softcapping") is not None:
        raise NativeUnsupported("attention logit soft-capping")
    if softcap := hp.get("final_logit_softcapping"):
        kv.f32("gemma3.final_logit_softcapping", softcap)
    if hp.get("sliding_window_pattern") != 1:
        kv.u32("gemma3.attention.sliding_window", hp["sliding_window"])
    _count(kv, "gemma3.attention.head_count_kv", hp.get("num_key_value_heads", 4))
