"""Everything a PEFT LoRA adapter says about itself, read once from adapter_config.json: the one home of the format.

Per-module rank and alpha follow PEFT's own rule (``get_pattern_key``): a ``rank_pattern``/``alpha_pattern`` key
applies to a module whose name ends with it at a dot boundary; the scale is ``alpha / r`` (``alpha / sqrt(r)`` with
rsLoRA). Adapter tensor names are ``[base_model.model.]<module>.lora_{A,B,embedding_A,embedding_B}[.<name>][.weight]``.

Usage::

    settings = read_lora_settings(adapter_dir)
    settings.scale_for("model.layers.0.self_attn.q_proj")   # 2.0 for r=8, lora_alpha=16
    parse_lora_key("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight").part   # "A"
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorag.errors import AdapterError, ModelError
from lorag.inspect.files import read_json

PEFT_PREFIX = "base_model.model."
CONFIG_NAME = "adapter_config.json"
_KEY = re.compile(r"^(?P<module>.+?)\.lora_(?P<part>A|B|embedding_A|embedding_B)(?:\.[A-Za-z_]\w*)?(?:\.weight)?$")
_PEFT_DEFAULT_R = 8
_PEFT_DEFAULT_ALPHA = 8


@dataclass(frozen=True)
class LoraKey:
    """One adapter tensor name, parsed: the base module it changes and which factor it is."""

    module: str
    part: str  # "A" | "B" | "embedding_A" | "embedding_B"

    @property
    def embedding(self) -> bool:
        return self.part.startswith("embedding")


@dataclass(frozen=True)
class LoraSettings:
    """adapter_config.json as a typed value: rank and alpha (with per-module patterns), flags and targets."""

    r: int = _PEFT_DEFAULT_R
    alpha: float = _PEFT_DEFAULT_ALPHA
    rank_pattern: dict[str, int] = field(default_factory=dict)
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    use_rslora: bool = False
    use_dora: bool = False
    fan_in_fan_out: bool = False
    bias: str = "none"
    lora_bias: bool = False
    target_modules: tuple[str, ...] = ()
    modules_to_save: tuple[str, ...] = ()
    peft_type: str = "LORA"
    base_model: str = ""

    @classmethod
    def from_config(cls, cfg: dict[str, Any], source: str = CONFIG_NAME) -> LoraSettings:
        """Check the types of an adapter_config.json object and build the settings; AdapterError names the field."""
        check = _Checker(source)
        r = check.integer(cfg, "r", _PEFT_DEFAULT_R)
        return cls(
            r=r, alpha=check.number(cfg, "lora_alpha", _PEFT_DEFAULT_ALPHA),
            rank_pattern={k: int(v) for k, v in check.mapping(cfg, "rank_pattern", int).items()},
            alpha_pattern={k: float(v) for k, v in check.mapping(cfg, "alpha_pattern", float).items()},
            use_rslora=check.flag(cfg, "use_rslora"), use_dora=check.flag(cfg, "use_dora"),
            fan_in_fan_out=check.flag(cfg, "fan_in_fan_out"), lora_bias=check.flag(cfg, "lora_bias"),
            bias=check.text(cfg, "bias", "none"), target_modules=check.names(cfg, "target_modules"),
            modules_to_save=check.names(cfg, "modules_to_save"),
            peft_type=check.text(cfg, "peft_type", "LORA").upper(),
            base_model=check.text(cfg, "base_model_name_or_path", ""),
        )

    def rank_for(self, module: str) -> int:
        """The rank of one module: its rank_pattern entry, else r."""
        return int(_pattern_value(module, self.rank_pattern, self.r))

    def alpha_for(self, module: str) -> float:
        """The alpha of one module: its alpha_pattern entry, else lora_alpha."""
        return float(_pattern_value(module, self.alpha_pattern, self.alpha))

    def scale_for(self, module: str) -> float:
        """The factor B·A is multiplied by for one module (rsLoRA divides by sqrt(r) instead of r)."""
        r, alpha = self.rank_for(module), self.alpha_for(module)
        return alpha / math.sqrt(r) if self.use_rslora else alpha / r

    @property
    def scale(self) -> float:
        """The scale of a module that no pattern names."""
        return self.alpha / math.sqrt(self.r) if self.use_rslora else self.alpha / self.r


def read_lora_settings(adapter_dir: Path) -> LoraSettings:
    """Read and check ``adapter_dir/adapter_config.json``; AdapterError says what is wrong and what to do."""
    path = adapter_dir / CONFIG_NAME
    if not path.is_file():
        raise AdapterError(f"{adapter_dir} has no {CONFIG_NAME}, so it is not a PEFT LoRA adapter.",
                           "Save the adapter with PeftModel.save_pretrained(), which writes it.")
    try:
        cfg = read_json(path)
    except ModelError as exc:
        raise AdapterError(exc.message, "Re-save the adapter with PeftModel.save_pretrained().") from exc
    settings = LoraSettings.from_config(cfg, str(path))
    if settings.peft_type != "LORA":
        raise AdapterError(f"{adapter_dir} is a {cfg.get('peft_type')} adapter; lorag handles LoRA adapters only.")
    return settings


def parse_lora_key(key: str) -> LoraKey | None:
    """The module and factor an adapter tensor name stands for; None for other tensors (modules_to_save copies)."""
    name = key[len(PEFT_PREFIX):] if key.startswith(PEFT_PREFIX) else key
    match = _KEY.match(name)
    return LoraKey(match["module"], match["part"]) if match else None


def strip_peft_prefix(key: str) -> str:
    """A tensor name without PEFT's ``base_model.model.`` wrapper."""
    return key[len(PEFT_PREFIX):] if key.startswith(PEFT_PREFIX) else key


def _pattern_value(module: str, patterns: dict[str, Any], default: Any) -> Any:
    # PEFT's get_pattern_key: the first pattern that matches the end of the name at a dot boundary wins.
    for pattern, value in patterns.items():
        if re.match(rf"(.*\.)?({pattern})$", module):
            return value
    return default


class _Checker:
    """Type checks for adapter_config.json fields, each failure one AdapterError naming field and expected type."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, name: str, expected: str, value: Any) -> AdapterError:
        return AdapterError(f"{self.source}: field {name} must be {expected}, not {type(value).__name__} {value!r}.",
                            "Fix the field, or re-save the adapter with PeftModel.save_pretrained().")

    def integer(self, cfg: dict[str, Any], name: str, default: int) -> int:
        value = cfg.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(name, "a positive integer", value)
        return value

    def number(self, cfg: dict[str, Any], name: str, default: float) -> float:
        value = cfg.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, "a number", value)
        return float(value)

    def flag(self, cfg: dict[str, Any], name: str) -> bool:
        value = cfg.get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(name, "true or false", value)
        return value

    def text(self, cfg: dict[str, Any], name: str, default: str) -> str:
        value = cfg.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(name, "a string", value)
        return value

    def names(self, cfg: dict[str, Any], name: str) -> tuple[str, ...]:
        value = cfg.get(name)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, "a list of module names or one string", value)
        return tuple(sorted(value))

    def mapping(self, cfg: dict[str, Any], name: str, kind: type) -> dict[str, Any]:
        value = cfg.get(name)
        if value is None:
            return {}
        numbers = (int,) if kind is int else (int, float)
        if not isinstance(value, dict) or not all(
                isinstance(v, numbers) and not isinstance(v, bool) for v in value.values()):
            raise self.fail(name, f"an object of module name → {'integer' if kind is int else 'number'}", value)
        return value
