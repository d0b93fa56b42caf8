"""Config faults through the real `lorag` command: a missing -c file, misspelt keys, bad variables, bad YAML."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import FAST_CONFIG, lorag, one_error_line


def test_missing_config_file_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    line = one_error_line(lorag("-c", "lorag.yml", "ingest", ".", cwd=tmp_path))
    assert line == (f"error: the config file {tmp_path / 'lorag.yml'} (from -c lorag.yml) does not exist; nothing was "
                    "done. Check the name, or create it with `lorag -c lorag.yml init`.")
    assert list(tmp_path.iterdir()) == []


def test_missing_config_from_the_environment(tmp_path: Path) -> None:
    proc = lorag("search", "x", cwd=tmp_path, env={"LORAG_CONFIG": str(tmp_path / "gone.yaml")})
    assert "(from $LORAG_CONFIG=" in one_error_line(proc)
    assert list(tmp_path.iterdir()) == []


def test_init_may_name_a_new_file(tmp_path: Path) -> None:
    proc = lorag("-c", "new.yaml", "init", cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "new.yaml").exists(), proc.stderr


def test_misspelt_keys_are_warned_and_the_command_runs(tmp_path: Path) -> None:
    (tmp_path / "lorag.yaml").write_text(FAST_CONFIG + "llm:\n  contxt: 8192\nretreival:\n  top_k: 3\n",
                                         encoding="utf-8")
    proc = lorag("search", "x", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "lorag.yaml"
    assert proc.stderr.splitlines() == [
        f"WARNING lorag.config: unknown key 'llm.contxt' in {path} line 6 is ignored (did you mean 'llm.context'?)",
        f"WARNING lorag.config: unknown section 'retreival' in {path} line 7 is ignored (did you mean 'retrieval'?)",
    ]


def test_bad_environment_variable_is_named(tmp_path: Path) -> None:
    (tmp_path / "lorag.yaml").write_text(FAST_CONFIG, encoding="utf-8")
    line = one_error_line(lorag("search", "x", cwd=tmp_path, env={"LORAG_LLM__THREADS": "abc"}))
    assert line.startswith("error: environment variable LORAG_LLM__THREADS='abc' is invalid: llm.threads: ")
    assert line.endswith(f"Fix or unset LORAG_LLM__THREADS (it overrides {tmp_path / 'lorag.yaml'}).")
    assert not (tmp_path / ".lorag").exists()


def test_tab_in_yaml_gives_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "lorag.yaml").write_text("retrieval:\n  top_k: 3\n\tembedder: none\n", encoding="utf-8")
    line = one_error_line(lorag("search", "x", cwd=tmp_path))
    assert line == (f"error: {tmp_path / 'lorag.yaml'} line 3, column 1: a tab character; YAML indents with spaces "
                    "only. Replace the tab with spaces.")
    assert not (tmp_path / ".lorag").exists()
