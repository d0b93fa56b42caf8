"""A build's child processes die with it, even when the build is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

PARENT = textwrap.dedent("""
    import subprocess, sys, time
    from pathlib import Path
    from lorag.build.children import guarded_command, guarded_env
    child = subprocess.Popen(guarded_command(Path(sys.argv[1]), "30"), env=guarded_env())
    print(child.pid, flush=True)
    time.sleep(60)
""")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_child_dies_when_the_build_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "converter.py"
    script.write_text("import sys, time\nprint(sys.argv[1:], flush=True)\ntime.sleep(float(sys.argv[1]))\n")
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(script)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(root)})
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _alive(child)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_the_script_runs_as_main_with_its_arguments(tmp_path: Path) -> None:
    from lorag.build.children import guarded_command, guarded_env

    script = tmp_path / "tool.py"
    (tmp_path / "helper.py").write_text("VALUE = 'imported from beside the script'\n")
    script.write_text("import sys\nimport helper\nprint(__name__, sys.argv[1:], helper.VALUE)\n")
    out = subprocess.run(guarded_command(script, "a", "b"), env=guarded_env(), capture_output=True, text=True,
                         check=True, cwd="/")
    assert out.stdout == "__main__ ['a', 'b'] imported from beside the script\n"
