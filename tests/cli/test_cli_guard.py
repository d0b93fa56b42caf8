"""The top-level guard of `lorag`: every failure is one red line; a bug also leaves its traceback in a log file."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from lorag import crashlog
from lorag.cli import main


@pytest.fixture
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Traceback logs go under a temp XDG cache; the CLI runs in a folder with a default config."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LORAG_CONFIG", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "lorag.yaml").write_text("retrieval:\n  embedder: none\n", encoding="utf-8")
    return tmp_path / "cache" / "lorag" / "logs"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    return int(done.value.code or 0), capsys.readouterr().err.splitlines()


def break_search(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    import lorag.rag.retrieve

    def broken(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(lorag.rag.retrieve, "search", broken)


def test_unexpected_exception_is_one_line_with_the_log_path(logs: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    break_search(monkeypatch, KeyError("chunk_id"))
    code, err = run(["search", "有給"], capsys)
    assert code == 1
    [log] = sorted(logs.glob("lorag-*.log"))
    assert err == [f"error: `lorag search` failed unexpectedly (KeyError: 'chunk_id'). This is a bug in lorag: the "
                   f"traceback is in {log}; please include it when you report the problem."]
    text = log.read_text(encoding="utf-8")
    assert "context: `lorag search`" in text
    assert "Traceback (most recent call last)" in text and text.rstrip().endswith("KeyError: 'chunk_id'")
    assert not list(logs.glob(".lorag-tmp-*"))


def test_verbose_shows_the_traceback_too(logs: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    break_search(monkeypatch, ZeroDivisionError("division by zero"))
    code, err = run(["-v", "search", "有給"], capsys)
    assert code == 1
    assert err[0] == "Traceback (most recent call last):"
    assert "ZeroDivisionError: division by zero" in err
    assert err[-1].startswith("error: `lorag search` failed unexpectedly (ZeroDivisionError: division by zero).")


def test_model_subcommands_are_named(logs: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    import lorag.config

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(lorag.config, "load_config", broken)  # every command loads it, wherever its code lives
    code, err = run(["model", "inspect", "x"], capsys)
    assert code == 1 and err[0].startswith("error: `lorag model inspect` failed unexpectedly (RuntimeError: boom).")


@pytest.mark.parametrize(("exc", "line"), [
    (OSError(errno.ENOSPC, "No space left on device", "/data/lorag.db-wal"),
     "error: the disk is full (writing /data/lorag.db-wal). Free some space on that disk"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/.lorag-tmp-x1"),
     "error: /mnt/ro is on a read-only file system. Remount it read-write"),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/models"),
     "error: permission denied: /srv/models. Check the owner and mode of that path"),
    (MemoryError(), "error: ran out of memory. Close other programs"),
    (OSError(errno.ENOMEM, "Cannot allocate memory"), "error: ran out of memory. Close other programs"),
    (OSError(errno.EIO, "Input/output error", "/nfs/docs/a.pdf"),
     "error: the disk failed to read or write /nfs/docs/a.pdf (I/O error). Check the disk"),
    (OSError(errno.EMFILE, "Too many open files"), "error: too many open files. Raise the limit (`ulimit -n 4096`)"),
    (RuntimeError("wrapper"), None),
])
def test_expected_faults_are_named_without_a_log(logs: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str], exc: BaseException,
                                                 line: str | None) -> None:
    if line is None:  # a fault wrapped by an unrelated exception is still found
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            try:
                raise exc from inner
            except RuntimeError as outer:
                exc, line = outer, "error: the disk is full. Free some space"
    break_search(monkeypatch, exc)
    code, err = run(["search", "有給"], capsys)
    assert code == 1 and len(err) == 1 and err[0].startswith(line), err
    assert not logs.exists()


def test_sqlite_disk_full_hidden_behind_a_failed_rollback(logs: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # What SQLite really raises when a write fills the disk and the rollback then finds no transaction.
    db = sqlite3.connect(":memory:", isolation_level=None)
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError:
            db.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        assert str(exc) == "cannot rollback - no transaction is active"
        wrapped = exc
    break_search(monkeypatch, wrapped)
    code, err = run(["search", "有給"], capsys)
    assert code == 1
    assert err == ["error: the disk is full (the SQLite store could not grow). Free some space on that disk "
                   "(`df -h` shows which), or move store.path / models.output_dir to a larger one, then run the "
                   "command again."]


def test_lorag_errors_stay_as_they_are(logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(["ask", ""], capsys)
    assert code == 2
    assert err == ["error: the question is empty. Give some text, e.g. `lorag ask 有給休暇は何日ですか？`."]
    assert not logs.exists()


def test_markup_in_messages_is_printed_as_is(logs: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    break_search(monkeypatch, ValueError("[bold]not markup[/bold]"))
    _, err = run(["search", "x"], capsys)
    assert "(ValueError: [bold]not markup[/bold])" in err[0]


def test_old_logs_are_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crashlog, "KEEP_LOGS", 3)
    for i in range(5):
        (tmp_path / f"lorag-2026010{i}-000000-1.log").write_text("old", encoding="utf-8")
    path = crashlog.save_traceback(RuntimeError("new"), "test", tmp_path)
    assert path is not None and path.parent == tmp_path
    kept = sorted(p.name for p in tmp_path.glob("lorag-*.log"))
    assert len(kept) == 3 and path.name in kept


def test_log_falls_back_when_the_folder_is_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = crashlog.save_traceback(RuntimeError("x"), "test", blocker / "logs")  # a folder under a file: ENOTDIR
    assert path is not None and path.parent == tmp_path / "cache" / "lorag" / "logs"


def test_failure_line_for_a_worker(tmp_path: Path) -> None:
    from lorag.errors import BuildError

    assert crashlog.failure_line(BuildError("no space for the build.", "Free 3 GB."), "the build") == \
        "no space for the build. Free 3 GB."
    line = crashlog.failure_line(TypeError("unsupported operand"), "the build", tmp_path)
    [log] = tmp_path.glob("lorag-*.log")
    assert line == (f"the build failed unexpectedly (TypeError: unsupported operand). This is a bug in lorag: the "
                    f"traceback is in {log}; please include it when you report the problem.")


def test_missing_config_file_in_process_and_env_restored(logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    code, err = run(["-c", "typo.yaml", "search", "x"], capsys)
    assert code == 1 and err[0].startswith("error: the config file ") and "(from -c typo.yaml) does not exist" in err[0]
    assert "LORAG_CONFIG" not in os.environ
    assert not (Path.cwd() / ".lorag").exists()


@pytest.mark.parametrize(("argv", "line"), [
    (["search", "x", "-k", "0"], "error: Invalid value for '--top-k' / '-k': Input should be greater than or equal "
                                 "to 1 (see `lorag search --help`)."),
    (["ask"], "error: Missing argument 'question' (see `lorag ask --help`)."),
    (["nope"], "error: No such command 'nope' (see `lorag --help`)."),
    (["model", "build"], "error: Missing option '--lora-path' (see `lorag model build --help`)."),
])
def test_usage_errors_are_one_line(logs: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                   line: str) -> None:
    assert run(argv, capsys) == (2, [line])


def test_help_and_success_exit_zero(logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "Usage: lorag" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["search", "有給"])
    assert done.value.code == 0


def test_ctrl_c_exits_130_quietly(logs: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    break_search(monkeypatch, KeyboardInterrupt())
    assert run(["search", "有給"], capsys) == (130, [])  # the user knows why it stopped: no traceback, no log
    assert not logs.exists()


def test_no_writable_log_folder_still_gives_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(blocker))
    line = crashlog.failure_line(RuntimeError("x"), "`lorag ask`", blocker / "logs")
    assert line == ("`lorag ask` failed unexpectedly (RuntimeError: x). This is a bug in lorag; its traceback could "
                    "not be saved (no writable log folder): run it again with -v to see it.")


def _script() -> object:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "quantize_finetuned_for_ollama.py"
    spec = importlib.util.spec_from_file_location("quantize_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_refuses_a_missing_config(logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = _script()
    assert script.main(["--lora-path", "outputs/lora_X", "--config", "typo.yaml"]) == 1  # type: ignore[attr-defined]
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: the config file {Path.cwd() / 'typo.yaml'} (from --config typo.yaml) does not exist; "
                   "nothing was done. Check the name, or create it with `lorag -c typo.yaml init`."]
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["lorag.yaml"]


def test_script_bug_is_one_line_with_a_log(logs: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import lorag.cli.build

    def broken(**kwargs: object) -> None:
        raise KeyError("stage")

    monkeypatch.setattr(lorag.cli.build, "run_build_command", broken)
    assert _script().main(["--lora-path", "outputs/lora_X"]) == 1  # type: ignore[attr-defined]
    [line] = capsys.readouterr().err.splitlines()
    [log] = logs.glob("lorag-*.log")
    assert line == (f"error: the build failed unexpectedly (KeyError: 'stage'). This is a bug in lorag: the traceback "
                    f"is in {log}; please include it when you report the problem.")
