"""Recognise a chat template's family and give Ollama (< 0.30) the equivalent Go template and stop strings."""

from __future__ import annotations

from dataclasses import dataclass, field

DS_BOS = "<｜begin▁of▁sentence｜>"
DS_EOS = "<｜end▁of▁sentence｜>"
DS_USER = "<｜User｜>"
DS_ASSISTANT = "<｜Assistant｜>"


@dataclass(frozen=True)
class TemplateFamily:
    """A chat format: its Go template for Ollama, stop strings and recommended sampling."""

    name: str
    go_template: str
    stop: tuple[str, ...]
    sampling: dict[str, float] = field(default_factory=dict)


# Written for lorag from each family's Jinja template; .System/.Messages/.Role/.Content are Ollama's fields.
# Newer Ollama keeps system messages in .Messages as well as joining them into .System, older ones only set
# .System: so every template prints .System once and skips system-role messages in the loop.
_CHATML = TemplateFamily(
    name="chatml",
    go_template=(
        "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{- range .Messages }}{{- if ne .Role \"system\" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
        "{{ end }}{{ end }}"
        "<|im_start|>assistant\n"
    ),
    stop=("<|im_end|>", "<|im_start|>"),
)

_DEEPSEEK_R1 = TemplateFamily(
    name="deepseek-r1",
    go_template=(
        "{{- if .System }}{{ .System }}{{ end }}"
        "{{- range $i, $m := .Messages }}"
        "{{- $last := eq (len (slice $.Messages $i)) 1 }}"
        "{{- if eq $m.Role \"user\" }}" + DS_USER + "{{ $m.Content }}"
        "{{- else if eq $m.Role \"assistant\" }}" + DS_ASSISTANT + "{{ $m.Content }}"
        "{{- if not $last }}" + DS_EOS + "{{ end }}"
        "{{- end }}"
        "{{- if and $last (ne $m.Role \"assistant\") }}" + DS_ASSISTANT + "<think>\n{{ end }}"
        "{{- end }}"
    ),
    stop=(DS_EOS, DS_USER, DS_ASSISTANT),
    sampling={"temperature": 0.6, "top_p": 0.95},
)

_LLAMA3 = TemplateFamily(
    name="llama3",
    go_template=(
        "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
        "{{- range .Messages }}{{- if ne .Role \"system\" }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
        "{{ .Content }}<|eot_id|>{{ end }}{{ end }}"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    stop=("<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"),
)

_GEMMA = TemplateFamily(
    name="gemma",
    # Gemma has no system role: the system text opens the first user turn.
    go_template=(
        "{{- $sys := .System }}{{- range $m := .Messages }}"
        "{{- if eq $m.Role \"user\" }}<start_of_turn>user\n"
        "{{ if $sys }}{{ $sys }}\n\n{{ $sys = \"\" }}{{ end }}{{ $m.Content }}<end_of_turn>\n"
        "{{ else if eq $m.Role \"assistant\" }}<start_of_turn>model\n{{ $m.Content }}<end_of_turn>\n{{ end }}"
        "{{- end }}<start_of_turn>model\n"
    ),
    stop=("<end_of_turn>", "<start_of_turn>"),
)

FAMILIES = {f.name: f for f in (_CHATML, _DEEPSEEK_R1, _LLAMA3, _GEMMA)}


def detect_family(chat_template: str | None) -> TemplateFamily | None:
    """The family a Jinja chat template belongs to, recognised by its special tokens; None if unknown."""
    if not chat_template:
        return None
    text = chat_template
    if DS_USER in text or DS_ASSISTANT in text or "<｜User｜>" in text:
        return _DEEPSEEK_R1
    if "<|start_header_id|>" in text and "<|eot_id|>" in text:
        return _LLAMA3
    if "<start_of_turn>" in text and "<end_of_turn>" in text:
        return _GEMMA
    if "<|im_start|>" in text and "<|im_end|>" in text:
        return _CHATML
    return None
