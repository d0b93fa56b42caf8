"""Read a PEFT LoRA adapter and compute each weight's merged value exactly as the reference merge does."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorag.errors import BuildError

_PREFIX = "base_model.model."
_KEY = re.compile(r"(?P<module>.+)\.lora_(?P<ab>[AB])(\.[A-Za-z_]+)?\.weight")


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


def _pattern_value(module: str, patterns: dict[str, Any], default: Any) -> Any:
    for pattern, value in patterns.items():
        if re.match(rf"(.*\.)?{pattern}$", module):
            return value
    return default


def _scale(module: str, cfg: dict[str, Any]) -> float:
    r = int(_pattern_value(module, cfg.get("rank_pattern") or {}, cfg.get("r", 8)))
    alpha = float(_pattern_value(module, cfg.get("alpha_pattern") or {}, cfg.get("lora_alpha", r)))
    return alpha / (r ** 0.5) if cfg.get("use_rslora") else alpha / r


def load_lora(adapter_dir: Path) -> LoraWeights:
    """Load adapter_config.json + adapter_model.safetensors; FastPathUnsupported for what we don't stream."""
    from safetensors.torch import load_file

    try:
        cfg = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read {adapter_dir / 'adapter_config.json'}: {exc}",
                         "Point --lora-path at a PEFT adapter directory.") from exc
    if cfg.get("use_dora") or cfg.get("modules_to_save") or cfg.get("bias", "none") != "none":
        raise FastPathUnsupported("the fast build path handles plain LoRA only (no DoRA, modules_to_save, bias).")
    weights_file = adapter_dir / "adapter_model.safetensors"
    if not weights_file.is_file():
        raise FastPathUnsupported(f"{weights_file} not found (the fast path reads safetensors adapters only).")
    halves: dict[str, dict[str, Any]] = {}
    for key, tensor in load_file(str(weights_file)).items():
        name = key[len(_PREFIX):] if key.startswith(_PREFIX) else key
        match = _KEY.fullmatch(name)
        if not match or "embed" in name or "lm_head" in name:
            raise FastPathUnsupported(f"adapter tensor {key} is not a linear-layer LoRA factor.")
        halves.setdefault(match["module"], {})[match["ab"]] = tensor
    pairs = {}
    for module, ab in halves.items():
        if set(ab) != {"A", "B"}:
            raise BuildError(f"adapter module {module} lacks its lora_A or lora_B tensor.", "Save the adapter again.")
        pairs[module + ".weight"] = (ab["A"], ab["B"], _scale(module, cfg))
    return LoraWeights(pairs, bool(cfg.get("fan_in_fan_out")))
