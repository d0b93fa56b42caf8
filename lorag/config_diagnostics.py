"""What is wrong with a config, said precisely: unknown keys (with the closest valid one), the environment variable
behind a bad value, and the line and column of a YAML error.

Usage::

    warn_unknown_keys(doc, Settings, "lorag.yaml")         # one WARNING line per unknown key or section
    raise ConfigError(validation_message(exc, doc, "lorag.yaml"))
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

log = logging.getLogger("lorag.config")

ENV_PREFIX = "LORAG_"
ENV_DELIMITER = "__"
_warned: set[str] = set()  # each warning once per process, though commands load the config more than once


# -- the keys lorag knows ---------------------------------------------------------------------------------------
def known_keys(settings_cls: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """Every valid dotted key: sections map to their model, leaves to None."""
    keys: dict[str, type[BaseModel] | None] = {}
    for name, field in settings_cls.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            keys[name] = section
            keys.update({f"{name}.{leaf}": None for leaf in section.model_fields})
        else:
            keys[name] = None
    return keys


def closest_key(dotted: str, keys: dict[str, Any]) -> str | None:
    """The valid key the user most likely meant: a close spelling in the same section, else the same key elsewhere."""
    sections = [k for k in keys if "." not in k]
    head, _, leaf = dotted.partition(".")
    if head not in keys:
        near = difflib.get_close_matches(head, sections, n=1, cutoff=0.6)
        if not near:
            return _same_leaf(head, keys) if not leaf else None
        fixed = f"{near[0]}.{leaf}" if leaf else near[0]
        return fixed if fixed in keys or not leaf else closest_key(fixed, keys) or near[0]
    leaves = [k.split(".", 1)[1] for k in keys if k.startswith(head + ".")]
    near = difflib.get_close_matches(leaf, leaves, n=1, cutoff=0.6)
    return f"{head}.{near[0]}" if near else _same_leaf(leaf, keys)


def _same_leaf(leaf: str, keys: dict[str, Any]) -> str | None:
    found = [k for k in keys if "." in k and k.split(".", 1)[1] == leaf]
    return found[0] if len(found) == 1 else None


# -- unknown keys in the file -----------------------------------------------------------------------------------
def unknown_keys(doc: Any, settings_cls: type[BaseModel], allowed: dict[str, tuple[str, ...]]) -> Iterator[
        tuple[str, int | None, str]]:
    """(dotted key, 1-based line or None, "key" or "section") for each key of ``doc`` that lorag does not know."""
    keys = known_keys(settings_cls)
    if not isinstance(doc, dict):
        return
    for name, value in doc.items():
        section = keys.get(str(name), "missing")
        if section == "missing":
            yield str(name), _line(doc, name), "section" if isinstance(value, dict) else "key"
        elif section is not None and isinstance(value, dict):
            extra = allowed.get(str(name), ())
            for key in value:
                if f"{name}.{key}" not in keys and key not in extra:
                    yield f"{name}.{key}", _line(value, key), "key"


def _line(mapping: Any, key: Any) -> int | None:
    lc = getattr(mapping, "lc", None)
    try:
        return int(lc.key(key)[0]) + 1 if lc is not None else None
    except (KeyError, TypeError, AttributeError):
        return None


def warn_unknown_keys(doc: Any, settings_cls: type[BaseModel], source: str,
                      allowed: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """Log one WARNING per unknown key of ``doc`` (and of the LORAG_* environment) and return the lines."""
    keys = known_keys(settings_cls)
    lines = []
    for dotted, line, kind in unknown_keys(doc, settings_cls, allowed or {}):
        where = f"{source} line {line}" if line else source
        lines.append(f"unknown {kind} {dotted!r} in {where} is ignored{_did_you_mean(dotted, keys)}")
    for var, dotted in env_keys().items():
        if ENV_DELIMITER in var and dotted not in keys:
            guess = closest_key(dotted, keys)
            hint = f" (did you mean {env_name(guess)}?)" if guess else ""
            lines.append(f"environment variable {var} is not a lorag setting and is ignored{hint}")
    for text in lines:
        if text not in _warned:
            _warned.add(text)
            log.warning("%s", text)
    return lines


def _did_you_mean(dotted: str, keys: dict[str, Any]) -> str:
    guess = closest_key(dotted, keys)
    if guess:
        return f" (did you mean {guess!r}?)"
    if "." not in dotted:
        return f" (sections: {', '.join(k for k in keys if '.' not in k)})"
    section = dotted.split(".", 1)[0]
    return f" (keys in {section}: {', '.join(k.split('.', 1)[1] for k in keys if k.startswith(section + '.'))})"


def nul_values(data: Any, prefix: str = "") -> Iterator[str]:
    """Dotted keys whose text holds a NUL character (no file name can; the OS would refuse it much later)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from nul_values(value, f"{prefix}{key}.")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from nul_values(value, f"{prefix[:-1]}[{i}].")
    elif isinstance(data, str) and "\0" in data:
        yield prefix[:-1]


# -- the environment --------------------------------------------------------------------------------------------
def env_keys() -> dict[str, str]:
    """``{"LORAG_LLM__THREADS": "llm.threads"}`` for each LORAG_* variable that addresses a setting."""
    found = {}
    for var in os.environ:
        if not var.upper().startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX):].lower()
        if ENV_DELIMITER in rest:
            found[var] = rest.replace(ENV_DELIMITER, ".")
    return found


def env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.upper().replace(".", ENV_DELIMITER)


def shown_value(var: str, value: str) -> str:
    """``value`` as it may appear in a message: secrets masked, passwords in URLs hidden."""
    import re

    if any(word in var.upper() for word in ("KEY", "TOKEN", "SECRET", "PASSWORD")):
        return "'***'"
    return repr(re.sub(r"(://[^:/@\s]+):[^@\s]*@", r"\1:***@", value))


def _env_var_for(dotted: str) -> str | None:
    """The LORAG_* variable that set ``dotted`` (itself, or the whole section it belongs to), if one did."""
    candidates = {var.upper(): var for var in os.environ if var.upper().startswith(ENV_PREFIX)}
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        name = env_name(".".join(parts[:n]))
        if name in candidates:
            return candidates[name]
    return None


# -- messages ---------------------------------------------------------------------------------------------------
def validation_message(exc: ValidationError, settings_cls: type[BaseModel], doc: Any, source: str) -> tuple[str, str]:
    """(message, hint) for a validation error: each bad field with the variable or the file line it came from."""
    parts, env_vars = [], []
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"])
        var = _env_var_for(dotted)
        if var is not None:
            env_vars.append(var)
            value = shown_value(var, os.environ[var])
            parts.append(f"environment variable {var}={value} is invalid: {dotted}: {err['msg']}")
        else:
            line = _line_of(doc, err["loc"])
            parts.append(f"{dotted}{f' (line {line})' if line else ''}: {err['msg']}")
    if env_vars and len(env_vars) == len(parts):
        return "; ".join(parts) + ".", f"Fix or unset {', '.join(dict.fromkeys(env_vars))} (it overrides {source})."
    hint = f"Fix or unset {', '.join(dict.fromkeys(env_vars))}, and fix {source}." if env_vars else ""
    return f"invalid {source}: " + "; ".join(parts) + ".", hint


def _line_of(doc: Any, loc: tuple[Any, ...]) -> int | None:
    node, line = doc, None
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            break
        line = _line(node, part) or line
        node = node[part]
    return line


def settings_error_message(exc: Exception) -> tuple[str, str]:
    """(message, hint) for pydantic-settings' own error: a LORAG_* value for a list or section that is not JSON."""
    import re

    found = re.search(r'field "([^"]+)"', str(exc))
    field = found.group(1) if found else ""
    vars_ = [v for v in os.environ if v.upper() == env_name(field) or v.upper().startswith(env_name(field) + "__")]
    named = ", ".join(f"{v}={shown_value(v, os.environ[v])}" for v in vars_)
    named = named or f"a {ENV_PREFIX}{field.upper()}* variable"
    return (f"environment variable {named} is not valid JSON (lists and sections are written as JSON, "
            f"e.g. '[\"/data/models\"]').", "Fix or unset the variable.")


def yaml_error_message(exc: Exception, source: str) -> tuple[str, str]:
    """(message, hint) for a YAML parse error, with the parser's line and column."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = str(getattr(exc, "problem", None) or str(exc).splitlines()[0])
    context = getattr(exc, "context", None)
    where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    if "'\\t'" in problem:
        return (f"{source}{where}: a tab character; YAML indents with spaces only.",
                "Replace the tab with spaces.")
    context_mark = getattr(exc, "context_mark", None)
    extra = ""
    if context and context_mark is not None and mark is not None and context_mark.line != mark.line:
        extra = f" ({context} started on line {context_mark.line + 1})"
    return (f"{source} is not valid YAML:{where}: {problem}{extra}.",
            "Fix that line, or run `lorag init --force` for a fresh default file (the old one is kept as .bak).")
