"""Read a PEFT LoRA adapter and compute each weight's merged value exactly as the reference merge does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorag.errors import BuildError
from lorag.inspect.lora import parse_lora_key, read_lora_settings, strip_peft_prefix


class FastPathUnsupported(BuildError):
    """The fast path cannot build this model/adapter; the reference route should be used instead."""


@dataclass
class LoraWeights:
    """Per base weight name: (A, B, scale), tensors kept on the CPU in their stored dtype."""

    pairs: dict[str, tuple[Any, Any, float]]
    fan_in_fan_out: bool

    def to(self, device: str) -> LoraWeights:
        """The same adapter with its factors on ``device``."""
        if device == "cpu":
            return self
        return LoraWeights({k: (a.to(device), b.to(device), s) for k, (a, b, s) in self.pairs.items()},
                           self.fan_in_fan_out)

    def merged(self, name: str, weight: Any) -> Any:
        """``weight + scale·B·A`` in fp32, cast back to the weight's dtype (PEFT's merge, bit for bit on CPU)."""
        pair = self.pairs.get(name)
        if pair is None:
            return weight
        a, b, scale = pair
        delta = (b.float() @ a.float()) * scale
        if self.fan_in_fan_out:
            delta = delta.T
        if tuple(delta.shape) != tuple(weight.shape):
            raise BuildError(f"shape mismatch in {name}: the adapter gives {tuple(delta.shape)}, the base has "
                             f"{tuple(weight.shape)}.",
                             "The adapter was trained on a different base; pass the right --base.")
        return (weight.float() + delta).to(weight.dtype)


def load_lora(adapter_dir: Path) -> LoraWeights:
    """Load adapter_config.json + adapter_model.safetensors; FastPathUnsupported for what we don't stream."""
    from safetensors.torch import load_file

    settings = read_lora_settings(adapter_dir)
    if settings.use_dora or settings.modules_to_save or settings.bias != "none":
        raise FastPathUnsupported("the fast build path handles plain LoRA only (no DoRA, modules_to_save, bias).")
    weights_file = adapter_dir / "adapter_model.safetensors"
    if not weights_file.is_file():
        raise FastPathUnsupported(f"{weights_file} not found (the fast path reads safetensors adapters only).")
    halves: dict[str, dict[str, Any]] = {}
    for key, tensor in load_file(str(weights_file)).items():
        name = strip_peft_prefix(key)
        parsed = parse_lora_key(name)
        if not parsed or parsed.embedding or "embed" in name or "lm_head" in name:
            raise FastPathUnsupported(f"adapter tensor {key} is not a linear-layer LoRA factor.")
        halves.setdefault(parsed.module, {})[parsed.part] = tensor
    pairs = {}
    for module, ab in halves.items():
        if set(ab) != {"A", "B"}:
            raise BuildError(f"adapter module {module} lacks its lora_A or lora_B tensor.", "Save the adapter again.")
        pairs[module + ".weight"] = (ab["A"], ab["B"], settings.scale_for(module))
    return LoraWeights(pairs, settings.fan_in_fan_out)
