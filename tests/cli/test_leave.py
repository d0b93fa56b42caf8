"""lorag.cli.leave: a process with torch loaded ends promptly, and loses nothing on the way out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A child process: output left in stdout's buffer, an atexit handler, and a module-level object whose __del__ only
# the interpreter's full teardown runs (so the marker tells which way the process ended).
CHILD = """
import atexit, sys, threading, time
from pathlib import Path
out = Path(sys.argv[1])
if sys.argv[2] == "torch":
    import torch  # noqa: F401
class Teardown:
    def __del__(self):
        (out / "teardown").write_text("ran")
keep = Teardown()
atexit.register(lambda: (out / "atexit").write_text("ran"))
if sys.argv[3] == "thread":
    def late():
        time.sleep(0.5)
        (out / "thread").write_text("done")
    threading.Thread(target=late).start()
sys.stdout.write("last line, no newline")
from lorag.cli.leave import leave
leave(int(sys.argv[4]))
"""


def _child(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_with_torch_loaded_it_ends_without_the_teardown_and_loses_nothing(tmp_path: Path) -> None:
    done = _child(tmp_path, "torch", "-", "3")
    assert done.returncode == 3
    assert done.stdout == "last line, no newline"  # the buffered output was flushed
    assert (tmp_path / "atexit").read_text() == "ran"  # the handlers ran
    assert not (tmp_path / "teardown").exists()  # the interpreter's teardown did not


def test_a_live_thread_is_waited_for_as_the_interpreter_would(tmp_path: Path) -> None:
    done = _child(tmp_path, "torch", "thread", "0")
    assert done.returncode == 0
    assert (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "atexit").read_text() == "ran"


def test_without_torch_it_is_an_ordinary_exit(tmp_path: Path) -> None:
    done = _child(tmp_path, "-", "-", "2")
    assert done.returncode == 2
    assert done.stdout == "last line, no newline"
    assert (tmp_path / "teardown").exists()


def test_a_message_instead_of_a_code_is_an_ordinary_exit(tmp_path: Path) -> None:
    script = "import torch; from lorag.cli.leave import leave; leave('cannot go on: the disk is full')"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1  # as sys.exit takes a message: printed to stderr, status 1
    assert done.stderr.strip() == "cannot go on: the disk is full"


@pytest.mark.parametrize("argv", [["--help"], ["no-such-command"]])
def test_the_lorag_entry_keeps_its_exit_codes(argv: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    plain = subprocess.run([sys.executable, "-c", "from lorag.cli import main; main()", *argv], capture_output=True,
                           text=True, env=env, timeout=120, check=False)
    entry = subprocess.run([sys.executable, "-m", "lorag", *argv], capture_output=True, text=True, env=env,
                           timeout=120, check=False)
    assert entry.returncode == plain.returncode
    assert entry.stdout == plain.stdout
    assert entry.stderr == plain.stderr
