"""Reading and writing lorag.yaml: comment-keeping YAML, clear parse errors, atomic writes with a .bak."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lorag.atomic import atomic_copy, atomic_write_text, clean_stale_temps
from lorag.config_diagnostics import yaml_error_message
from lorag.errors import ConfigError, recognise


def yaml_rt() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def read_yaml(path: Path) -> Any:
    from ruamel.yaml import YAMLError

    try:
        data = yaml_rt().load(path.read_text(encoding="utf-8"))
    except YAMLError as exc:
        raise ConfigError(*yaml_error_message(exc, str(path))) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}).",
                          "Save it as UTF-8 (Shift_JIS/CP932 files must be converted).") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path} is a directory, not a config file.", "Give the path of a lorag.yaml.") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}.") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = "list" if isinstance(data, list) else "single value"
        raise ConfigError(f"{path} must hold a mapping at the top level (section: key: value), not a {kind}.")
    return data


def plain(data: Any) -> Any:
    """Convert ruamel's commented containers into plain dicts and lists."""
    if isinstance(data, dict):
        return {str(k): plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data


STALE_TEMP_AGE_S = 60.0  # a config write takes milliseconds: an older temp beside it was left by a killed write


def write_with_backup(path: Path, text: str) -> None:
    try:
        if path.exists():
            # Mode bits too: root passes os.access, but a file marked read-only is the user's "don't touch".
            read_only = not path.stat().st_mode & 0o222 or not os.access(path, os.W_OK)
            if read_only or not os.access(path.parent, os.W_OK):
                raise ConfigError(f"{path} is read-only; the config was not changed.",
                                  "Make it writable and try again.")
            atomic_copy(path, path.with_name(path.name + ".bak"))
        atomic_write_text(path, text)
        clean_stale_temps(path.parent, files_only=True, min_age_s=STALE_TEMP_AGE_S)
    except OSError as exc:
        fault = recognise(exc)
        if fault is not None:
            raise type(fault)(f"{fault.message.rstrip('.')}; the config was not changed.", fault.hint) from exc
        raise ConfigError(f"cannot write {path}: {exc.strerror}; the config was not changed.") from exc
