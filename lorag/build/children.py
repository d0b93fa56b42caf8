"""Child processes of a build die with it, even when the build is killed with SIGKILL.

A converter started as ``python script.py`` outlives a killed parent and keeps writing for seconds. Each child
is started through a two-line launcher instead: it asks the Linux kernel for SIGKILL when its parent dies
(``prctl(PR_SET_PDEATHSIG)``), checks the parent did not die before that, and then runs the script as
``__main__``. No ``preexec_fn``, so it is safe while the build runs threads.

Usage::

    subprocess.Popen(guarded_command(tree / "convert_hf_to_gguf.py", str(model_dir)), env=guarded_env(env))
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PARENT_ENV = "LORAG_BUILD_PARENT_PID"
_LAUNCHER = (
    "import ctypes, os, runpy, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL\n"
    f"if os.getppid() != int(os.environ.get('{PARENT_ENV}') or os.getppid()):\n"
    "    sys.exit(1)  # the build died before the guard was set\n"
    "sys.argv = sys.argv[1:]\n"
    "sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def guarded_command(script: Path, *args: str) -> list[str]:
    """The argv that runs ``script`` with ``args`` in this interpreter, killed when this process dies."""
    return [sys.executable, "-c", _LAUNCHER, str(script), *args]


def guarded_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) plus the parent pid the launcher checks."""
    return {**(os.environ if env is None else env), PARENT_ENV: str(os.getpid())}
