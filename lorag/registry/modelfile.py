"""The Ollama Modelfile and the matching /api/create fields for a built GGUF."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lorag.registry.templates import TemplateFamily, detect_family


@dataclass
class ModelSpec:
    """What Ollama needs beside the weights: template, stop strings, sampling and context."""

    template: str | None
    parameters: dict[str, Any]
    family: str | None
    notes: list[str] = field(default_factory=list)
    system: str | None = None


def model_spec(chat_template: str | None, num_ctx: int, temperature: float, top_p: float) -> ModelSpec:
    """Derive the Go TEMPLATE and explicit parameters from the fine-tune's Jinja chat template."""
    family: TemplateFamily | None = detect_family(chat_template)
    params: dict[str, Any] = {"temperature": temperature, "top_p": top_p, "num_ctx": int(num_ctx)}
    notes: list[str] = []
    if family is None:
        notes.append("chat template family not recognised: no TEMPLATE written; Ollama >= 0.30 uses the Jinja "
                     "template embedded in the GGUF, older versions fall back to a bare prompt")
        return ModelSpec(template=None, parameters=params, family=None, notes=notes)
    params.update(family.sampling)  # the family's recommended sampling (e.g. DeepSeek-R1: 0.6 / 0.95)
    params["stop"] = list(family.stop)
    return ModelSpec(template=family.go_template, parameters=params, family=family.name, notes=notes)


def render_modelfile(gguf_name: str, spec: ModelSpec, adapter_name: str | None = None) -> str:
    """Modelfile text; FROM and ADAPTER are relative to the Modelfile's own directory."""
    lines = [f"FROM ./{gguf_name}"]
    if adapter_name:
        lines.append(f"ADAPTER ./{adapter_name}")
    if spec.template is not None:
        lines.append(f'TEMPLATE """{spec.template}"""')
    if spec.system:
        lines.append(f'SYSTEM """{spec.system}"""')
    for key, value in spec.parameters.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"PARAMETER {key} {_param(item)}")
    for note in spec.notes:
        lines.append(f"# note: {note}")
    return "\n".join(lines) + "\n"


def _param(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)
