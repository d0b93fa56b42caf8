"""Config: defaults, env overrides, comment-keeping atomic updates with a backup, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lorag.config import init_config, load_config, update_config
from lorag.errors import ConfigError, DiskFullError


def test_defaults_without_file(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "missing.yaml")
    assert cfg.settings.llm.backend == "auto"
    assert cfg.settings.retrieval.tokenizer == "sudachi"
    assert cfg.store_path == tmp_path / ".lorag" / "lorag.db"


def test_init_refuses_to_overwrite(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="already exists"):
        init_config(config_file)


def test_env_overrides_file(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAG_LLM__BACKEND", "ollama")
    monkeypatch.setenv("LORAG_RETRIEVAL__TOP_K", "9")
    cfg = load_config()
    assert cfg.settings.llm.backend == "ollama"
    assert cfg.settings.retrieval.top_k == 9


def test_update_keeps_comments_and_backup(config_file: Path) -> None:
    before = config_file.read_text(encoding="utf-8")
    cfg = update_config(config_file, {"llm.model": "lorag-ft:q4_k_m", "llm.backend": "ollama"})
    text = config_file.read_text(encoding="utf-8")
    assert cfg.settings.llm.model == "lorag-ft:q4_k_m"
    assert "# optional LoRA adapter (PEFT dir or GGUF LoRA)" in text
    assert 'model: "lorag-ft:q4_k_m"' in text
    assert config_file.with_name("lorag.yaml.bak").read_text(encoding="utf-8") == before


def test_invalid_update_leaves_file_untouched(config_file: Path) -> None:
    before = config_file.read_bytes()
    with pytest.raises(ConfigError, match=r"llm\.backend"):
        update_config(config_file, {"llm.backend": "gpt5"})
    with pytest.raises(ConfigError, match="unknown quantization"):
        update_config(config_file, {"build.quantization": "Q3_X"})
    assert config_file.read_bytes() == before
    assert not list(config_file.parent.glob(".lorag-tmp-*"))


def test_read_only_config_is_refused(config_file: Path) -> None:
    config_file.chmod(0o444)
    before = config_file.read_bytes()
    with pytest.raises(ConfigError, match="read-only"):
        update_config(config_file, {"llm.model": "x"})
    assert config_file.read_bytes() == before


def test_read_only_config_is_refused_as_root(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root can write anything, so simulate the permission check the way a normal user would hit it.
    before = config_file.read_bytes()
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ConfigError, match="read-only; the config was not changed"):
        update_config(config_file, {"llm.model": "x"})
    assert config_file.read_bytes() == before


def test_malformed_yaml_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "lorag.yaml"
    bad.write_text("llm: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_legacy_rag_config_is_mapped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    legacy = tmp_path / "rag_config.yaml"
    legacy.write_text(
        "llm:\n  use_finetuned: true\n  finetuned_model_path: outputs/lora_X\n"
        "  use_ollama_fallback: true\n  ollama_model: llama3.2:3b\n  load_in_8bit: true\n",
        encoding="utf-8",
    )
    cfg = load_config(legacy)
    assert cfg.settings.llm.model == "outputs/lora_X"
    assert cfg.settings.llm.fallback == "llama3.2:3b"
    assert cfg.settings.llm.quantization == "4bit"
    assert "load_in_8bit" in caplog.text


def test_unknown_keys_are_warned_with_the_closest_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "lorag.yaml"
    path.write_text("llm:\n  contxt: 8192\n  model: x\nretreival:\n  top_k: 3\ntop_k: 4\nllm2: 1\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.settings.llm.context == 4096 and cfg.settings.retrieval.top_k == 5  # ignored, not guessed
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"unknown key 'llm.contxt' in {path} line 2 is ignored (did you mean 'llm.context'?)",
        f"unknown section 'retreival' in {path} line 4 is ignored (did you mean 'retrieval'?)",
        f"unknown key 'top_k' in {path} line 6 is ignored (did you mean 'retrieval.top_k'?)",
        f"unknown key 'llm2' in {path} line 7 is ignored (did you mean 'llm'?)",
    ]


def test_unknown_key_without_a_close_match_lists_the_valid_ones(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "lorag.yaml"
    path.write_text("store:\n  zzz: 1\n", encoding="utf-8")
    load_config(path)
    from lorag.config import StoreSettings

    assert caplog.records[-1].getMessage() == (f"unknown key 'store.zzz' in {path} line 2 is ignored "
                                               f"(keys in store: {', '.join(StoreSettings.model_fields)})")


def test_legacy_keys_are_not_unknown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "rag_config.yaml"
    path.write_text("llm:\n  load_in_8bit: false\n", encoding="utf-8")
    load_config(path)
    assert not [r for r in caplog.records if "unknown" in r.getMessage()]


def test_unknown_environment_variable_is_warned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("LORAG_LLM__CONTXT", "8192")
    monkeypatch.setenv("LORAG_RETREIVAL__TOP_K", "3")
    monkeypatch.setenv("LORAG_FAST_CACHE", "/tmp/x")  # not a setting: lorag reads it elsewhere
    load_config(tmp_path / "none.yaml")
    messages = sorted(r.getMessage() for r in caplog.records)
    assert messages == [
        "environment variable LORAG_LLM__CONTXT is not a lorag setting and is ignored "
        "(did you mean LORAG_LLM__CONTEXT?)",
        "environment variable LORAG_RETREIVAL__TOP_K is not a lorag setting and is ignored "
        "(did you mean LORAG_RETRIEVAL__TOP_K?)",
    ]


def test_environment_errors_name_the_variable(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAG_LLM__THREADS", "abc")
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value) == (
        "environment variable LORAG_LLM__THREADS='abc' is invalid: llm.threads: Input should be a valid integer, "
        f"unable to parse string as an integer. Fix or unset LORAG_LLM__THREADS (it overrides {config_file}).")
    assert "lorag.yaml:" not in info.value.message


def test_environment_json_errors_name_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAG_MODELS__ROOTS", "/data/models")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "none.yaml")
    assert str(info.value) == (
        "environment variable LORAG_MODELS__ROOTS='/data/models' is not valid JSON (lists and sections are written "
        "as JSON, e.g. '[\"/data/models\"]'). Fix or unset the variable.")


def test_file_errors_carry_the_line(tmp_path: Path) -> None:
    path = tmp_path / "lorag.yaml"
    path.write_text("# comment\nllm:\n  backend: auto\n  threads: many\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message == (f"invalid {path}: llm.threads (line 4): Input should be a valid integer, "
                                  "unable to parse string as an integer.")


@pytest.mark.parametrize(("text", "message"), [
    ("llm:\n\tcontext: 5\n", "{path} line 2, column 1: a tab character; YAML indents with spaces only. "
                             "Replace the tab with spaces."),
    ("llm:\n  context: 5\n  \tmodel: x\n", "{path} line 3, column 3: a tab character; YAML indents with spaces only. "
                                          "Replace the tab with spaces."),
    ("a: b: c\n", "{path} is not valid YAML: line 1, column 5: mapping values are not allowed here. Fix that line, "
                  "or run `lorag init --force` for a fresh default file (the old one is kept as .bak)."),
    ("llm:\n  model: 'x\n", "{path} is not valid YAML: line 3, column 1: found unexpected end of stream "
                            "(while scanning a quoted scalar started on line 2). Fix that line, or run `lorag init "
                            "--force` for a fresh default file (the old one is kept as .bak)."),
    ("llm: {}\nllm: {}\n", "{path} is not valid YAML: line 2, column 1: found duplicate key \"llm\" with value "
                           "\"{{}}\" (original value: \"{{}}\") (while constructing a mapping started on line 1). "
                           "Fix that line, or run `lorag init --force` for a fresh default file (the old one is kept "
                           "as .bak)."),
])
def test_yaml_errors_carry_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "lorag.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == message.format(path=path)


def test_non_utf8_and_non_mapping_files(tmp_path: Path) -> None:
    sjis = tmp_path / "sjis.yaml"
    sjis.write_bytes("# 設定\nllm: {}\n".encode("cp932"))
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 0x90 at offset 2\)\. Save it as UTF-8"):
        load_config(sjis)
    listing = tmp_path / "list.yaml"
    listing.write_text("- llm\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"must hold a mapping at the top level \(section: key: value\), not a list"):
        load_config(listing)
    with pytest.raises(ConfigError, match="is a directory, not a config file"):
        load_config(tmp_path)


def test_check_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lorag.config import check_config_file

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LORAG_CONFIG", raising=False)
    check_config_file(None)  # nothing named: ./lorag.yaml or the defaults
    with pytest.raises(ConfigError) as info:
        check_config_file("lorag.yml", "-c")
    assert str(info.value) == (f"the config file {tmp_path / 'lorag.yml'} (from -c lorag.yml) does not exist; nothing "
                               "was done. Check the name, or create it with `lorag -c lorag.yml init`.")
    monkeypatch.setenv("LORAG_CONFIG", str(tmp_path / "gone.yaml"))
    with pytest.raises(ConfigError, match=r"\(from \$LORAG_CONFIG=.*gone\.yaml\) does not exist"):
        check_config_file(None)
    assert list(tmp_path.iterdir()) == []


def test_backup_is_atomic_and_a_full_disk_changes_nothing(config_file: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import lorag.atomic

    update_config(config_file, {"llm.model": "first"})
    before, backup = config_file.read_bytes(), config_file.with_name("lorag.yaml.bak").read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lorag.atomic.os, "fsync", full)
    with pytest.raises(DiskFullError) as info:
        update_config(config_file, {"llm.model": "second"})
    assert str(info.value).startswith(f"the disk is full (writing {config_file}.bak); the config was not changed. "
                                      "Free some space")
    assert config_file.read_bytes() == before
    assert config_file.with_name("lorag.yaml.bak").read_bytes() == backup
    assert sorted(p.name for p in config_file.parent.iterdir()) == ["lorag.yaml", "lorag.yaml.bak"]


def test_nul_characters_are_refused_where_they_are(tmp_path: Path) -> None:
    path = tmp_path / "lorag.yaml"
    path.write_text('store:\n  path: "a\\0b.db"\nmodels:\n  roots: [ok, "x\\0"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (f"store.path in {path} contains a NUL character (\\0), which no path or name can hold. "
                               "Remove it.")


@pytest.mark.parametrize("value", ['""', ".", "/"])
def test_store_path_must_name_a_file(tmp_path: Path, value: str) -> None:
    path = tmp_path / "lorag.yaml"
    path.write_text(f"store:\n  path: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"store\.path \('.*'\) names the directory .*; it must name the store's"):
        load_config(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lorag.yaml"]


def test_tilde_of_an_unknown_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lorag.yaml"
    path.write_text("store:\n  path: ~nosuchuser/lorag.db\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        _ = load_config(path).store_path
    assert str(info.value) == (f"the path '~nosuchuser/lorag.db' in {path} starts with ~nosuchuser, but there is no "
                               "user 'nosuchuser' on this machine. Write the full path instead.")
    assert not (tmp_path / "~nosuchuser").exists()


def test_secrets_in_variables_are_not_echoed() -> None:
    from lorag.config_diagnostics import shown_value

    assert shown_value("LORAG_LLM__OPENAI_API_KEY", "sk-secret") == "'***'"
    assert shown_value("LORAG_STORE__URL", "postgresql://bob:hunter2@db:5432/lorag") == \
        "'postgresql://bob:***@db:5432/lorag'"
    assert shown_value("LORAG_LLM__THREADS", "abc") == "'abc'"


def test_temp_left_by_a_killed_config_write_is_cleaned_by_the_next_write(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from lorag.config import update_config

    config_file = tmp_path / "lorag.yaml"
    update_config(config_file, {"retrieval.top_k": 4})
    before = config_file.read_text(encoding="utf-8")
    # A real writer killed with SIGKILL between creating its temp file and the rename.
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from lorag.atomic import atomic_open\n"
        f"with atomic_open(Path({str(config_file)!r}), 'w') as fh:\n"
        "    fh.write('retrieval:\\n  top_k: 9\\n'); fh.flush(); print('writing', flush=True); time.sleep(60)\n"
    )], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    assert child.stdout is not None and child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    leftovers = list(tmp_path.glob(".lorag-tmp-*"))
    assert len(leftovers) == 1 and config_file.read_text(encoding="utf-8") == before
    fresh = tmp_path / ".lorag-tmp-in-progress"
    fresh.write_text("another process writing now")
    old = time.time() - 120
    os.utime(leftovers[0], (old, old))

    update_config(config_file, {"retrieval.top_k": 5})

    assert not leftovers[0].exists()
    assert fresh.exists()  # written to within the last minute: may be another writer's
    assert "top_k: 5" in config_file.read_text(encoding="utf-8")
