"""Merge a PEFT LoRA adapter into its 16-bit base, one safetensors shard at a time.

Each targeted weight becomes ``W + scale · B·A`` computed in fp32 and stored back in the base dtype, so RAM
stays near one shard plus the (small) adapter, whatever the model size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorag.build import shards as shards_mod
from lorag.build.progress import StageProgress
from lorag.errors import BuildError
from lorag.inspect.lora import LoraSettings, parse_lora_key, read_lora_settings, strip_peft_prefix

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


@dataclass
class LoraPair:
    """The A and B matrices of one adapted module, with the scale that applies to it."""

    module: str
    a: Any = None
    b: Any = None
    embedding: bool = False


@dataclass
class AdapterWeights:
    """What an adapter changes in the base, keyed by base weight name."""

    pairs: dict[str, LoraPair] = field(default_factory=dict)
    replacements: dict[str, Any] = field(default_factory=dict)  # modules_to_save: full new weights
    settings: LoraSettings = field(default_factory=LoraSettings)

    @property
    def touches_embeddings(self) -> bool:
        keys = [*self.pairs, *self.replacements]
        return any(k.endswith(("embed_tokens.weight", "lm_head.weight", "wte.weight")) for k in keys)


def read_adapter_settings(adapter_dir: Path) -> LoraSettings:
    """The adapter's LoRA settings, refusing what the merge cannot do exactly (DoRA, trained LoRA biases)."""
    settings = read_lora_settings(adapter_dir)
    if settings.use_dora:
        raise BuildError("DoRA adapters are not supported by the build yet.", "Train a plain LoRA (use_dora=False).")
    if settings.lora_bias:
        raise BuildError("adapters with lora_bias=True are not supported by the build yet.")
    return settings


def load_adapter_weights(adapter_dir: Path) -> AdapterWeights:
    """Read the adapter tensors, sort them into LoRA pairs and full replacements, and check them."""
    settings = read_adapter_settings(adapter_dir)
    raw = _read_tensors(adapter_dir)
    weights = AdapterWeights(settings=settings)
    for key, tensor in raw.items():
        _check_finite(key, tensor)
        _sort_tensor(weights, key, tensor)
    for name, pair in weights.pairs.items():
        if pair.a is None or pair.b is None:
            raise BuildError(f"adapter tensor for {name} has only one of lora_A/lora_B; the adapter file is corrupt.")
        _check_rank(pair, settings)
    return weights


def _read_tensors(adapter_dir: Path) -> dict[str, Any]:
    st = adapter_dir / "adapter_model.safetensors"
    if st.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(st)))
        except (SafetensorError, OSError, ValueError) as exc:
            raise BuildError(f"cannot read {st}: {exc}", "The adapter file is corrupt; save it again.") from exc
    binf = adapter_dir / "adapter_model.bin"
    if binf.is_file():
        import torch

        try:
            return dict(torch.load(binf, map_location="cpu", weights_only=True))
        except Exception as exc:
            raise BuildError(f"cannot read {binf}: {exc}", "The adapter file is corrupt; save it again.") from exc
    raise BuildError(f"{adapter_dir} has no adapter_model.safetensors or adapter_model.bin.")


def _check_finite(key: str, tensor: Any) -> None:
    import torch

    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise BuildError(f"adapter tensor {key} contains NaN or Inf values.",
                         "The fine-tune diverged; use an earlier checkpoint or retrain with a lower learning rate.")


def _sort_tensor(weights: AdapterWeights, key: str, tensor: Any) -> None:
    name = strip_peft_prefix(key)
    parsed = parse_lora_key(name)
    if parsed:
        pair = weights.pairs.setdefault(parsed.module + ".weight", LoraPair(module=parsed.module))
        pair.embedding = parsed.embedding
        if parsed.part.endswith("A"):
            pair.a = tensor
        else:
            pair.b = tensor
        return
    if ".lora_magnitude_vector" in name:
        raise BuildError("DoRA adapters are not supported by the build yet.")
    # modules_to_save (`lm_head.weight`) and saved embedding bases (`embed_tokens.base_layer.weight`).
    name = name.replace(".modules_to_save.default.", ".").replace(".base_layer.", ".")
    weights.replacements[name] = tensor


def module_scale(module: str, settings: LoraSettings) -> tuple[int, float]:
    """Rank and scale of one module, honouring rank_pattern/alpha_pattern and rsLoRA."""
    return settings.rank_for(module), settings.scale_for(module)


def _check_rank(pair: LoraPair, settings: LoraSettings) -> None:
    r, _ = module_scale(pair.module, settings)
    a_rank, b_rank = pair.a.shape[0], pair.b.shape[-1]
    if a_rank != r or b_rank != r:
        raise BuildError(
            f"rank mismatch in {pair.module}: adapter_config.json says r={r} but the tensors have rank "
            f"{a_rank} (A) and {b_rank} (B).", "The adapter file does not match its config; save it again.")


def lora_delta(pair: LoraPair, settings: LoraSettings) -> Any:
    """scale · B·A in fp32, laid out like the base weight (PEFT's order of operations)."""
    _, scale = module_scale(pair.module, settings)
    delta = (pair.b.float() @ pair.a.float()) * scale
    if pair.embedding or settings.fan_in_fan_out:
        delta = delta.T
    return delta


def merge_into(weight: Any, pair: LoraPair, settings: LoraSettings) -> Any:
    """Return ``weight + delta`` computed in fp32 and cast back to the weight's dtype."""
    delta = lora_delta(pair, settings)
    if tuple(delta.shape) != tuple(weight.shape):
        raise BuildError(
            f"shape mismatch in {pair.module}: the adapter produces {tuple(delta.shape)} but the base weight is "
            f"{tuple(weight.shape)}.", "The adapter was trained on a different base model; pass the right --base.")
    return (weight.float() + delta).to(weight.dtype)


def base_weight_map(base_dir: Path) -> tuple[dict[str, str], bool]:
    """Map each base tensor name to its safetensors file; the flag says whether an index file exists."""
    refuse_quantized_base(base_dir)
    index = base_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map: dict[str, str] = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return weight_map, True
    single = base_dir / "model.safetensors"
    if single.is_file():
        from safetensors import safe_open

        with safe_open(str(single), framework="pt") as fh:
            return {k: single.name for k in fh.keys()}, False  # noqa: SIM118
    raise BuildError(f"{base_dir} has no safetensors weights (model.safetensors or an index).",
                     "Save the base model with safe_serialization=True, or pass the right --base.")


def refuse_quantized_base(base_dir: Path) -> None:
    """A bitsandbytes/GPTQ/AWQ base cannot be merged exactly: the merge needs the 16-bit weights."""
    try:
        config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read {base_dir / 'config.json'}: {exc}", "Pass the base model with --base.") from exc
    quant = config.get("quantization_config") or {}
    if quant:
        method = quant.get("quant_method", "unknown")
        bits = "4-bit" if quant.get("load_in_4bit") else "8-bit" if quant.get("load_in_8bit") else "quantized"
        raise BuildError(
            f"the base model at {base_dir} is a {bits} {method} checkpoint; merging a LoRA needs the original "
            "16-bit (bf16/fp16) base weights.",
            "Pass the unquantized base with --base (a QLoRA adapter still merges into the 16-bit base).")


def merge_model(base_dir: Path, weights: AdapterWeights, out_dir: Path, progress: StageProgress) -> list[str]:
    """Write merged shards, index and config into ``out_dir``; return the names of the changed tensors."""
    weight_map, has_index = base_weight_map(base_dir)
    config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    lm_head = _untie_target(weight_map, config, weights)
    _check_targets(weights, weight_map, lm_head)
    shards = sorted(set(weight_map.values()))
    total = sum((base_dir / s).stat().st_size for s in shards)
    done, changed = 0, []
    for shard in shards:
        progress.fraction(done, total, f"merging {shard}")
        written = _write_merged_shard(base_dir / shard, out_dir / shard, weights, lm_head)
        changed += [k for k in written if k in weights.pairs or k in weights.replacements or k == lm_head.get("key")]
        if lm_head and lm_head["key"] in written:
            weight_map[lm_head["key"]] = shard
        done += (base_dir / shard).stat().st_size
    if lm_head:
        config["tie_word_embeddings"] = False
        config.get("text_config", {}).pop("tie_word_embeddings", None)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if has_index:
        shards_mod.write_index(out_dir, weight_map)
    progress.fraction(total, total, f"merged {len(changed)} tensors")
    return sorted(changed)


def _untie_target(weight_map: dict[str, str], config: dict[str, Any], weights: AdapterWeights) -> dict[str, str]:
    # With tied embeddings the base has no lm_head tensor. If the adapter changes either side, the merged model
    # must carry both (PEFT trains them as separate tensors), so write lm_head explicitly and untie.
    embed = next((k for k in weight_map if k.endswith("embed_tokens.weight")), None)
    head = next((k for k in [*weights.pairs, *weights.replacements] if k.endswith("lm_head.weight")), "lm_head.weight")
    tied = config.get("tie_word_embeddings", config.get("text_config", {}).get("tie_word_embeddings", False))
    if not embed or head in weight_map or not tied or not weights.touches_embeddings:
        return {}
    return {"embed": embed, "key": head}


def _check_targets(weights: AdapterWeights, weight_map: dict[str, str], lm_head: dict[str, str]) -> None:
    missing = [k for k in [*weights.pairs, *weights.replacements] if k not in weight_map and k != lm_head.get("key")]
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise BuildError(f"the adapter changes weights the base model does not have ({shown}).",
                         "The adapter was trained on a different architecture; pass the right --base.")


def _write_merged_shard(src: Path, dst: Path, weights: AdapterWeights, lm_head: dict[str, str]) -> list[str]:
    """Stream one shard: read a tensor, merge it, append it to ``dst``; return the names written."""
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as fh:
        layout = shards_mod.shard_layout(fh)
        names = [name for name, _, _ in layout]
        if lm_head and lm_head["embed"] in names:
            _, dtype, shape = layout[names.index(lm_head["embed"])]
            layout.insert(names.index(lm_head["embed"]) + 1, (lm_head["key"], dtype, shape))

        def produce(name: str) -> Any:
            source = lm_head["embed"] if lm_head and name == lm_head["key"] else name
            return _apply(name, fh.get_tensor(source), weights)

        shards_mod.write_shard(dst, layout, produce)
    return [name for name, _, _ in layout]


def _apply(key: str, tensor: Any, weights: AdapterWeights) -> Any:
    if key in weights.replacements:
        new = weights.replacements[key]
        if tuple(new.shape) != tuple(tensor.shape):
            raise BuildError(f"the adapter's {key} has shape {tuple(new.shape)} but the base has "
                             f"{tuple(tensor.shape)} (resized vocabulary?).",
                             "Pass the base the adapter was trained on.")
        tensor = new.to(tensor.dtype)
    if key in weights.pairs:
        tensor = merge_into(tensor, weights.pairs[key], weights.settings)
    return tensor.contiguous()
