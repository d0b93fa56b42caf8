"""Leaving the process once the command is done: promptly where torch is loaded.

With torch (and CUDA) loaded, the interpreter's teardown after the command's last line takes 1.0-1.8 s on a GPU
machine: it frees torch's thousands of modules and objects one by one, then runs the C++ destructors that release
CUDA's context and the pinned host buffers. None of it is work the user waits for: the output file is renamed into
place and the config written before the command returns. So where torch is loaded, ``leave`` flushes the standard
streams, runs the ``atexit`` handlers (logging's flush, temporary folders' clean-up, any handler a library
registered) and ends the process with ``os._exit``; the kernel and the driver release the rest. That is no weaker
than a kill -9, which every write in lorag already survives (lorag.atomic).

It exits the ordinary way (``sys.exit``) where torch is not loaded (nothing to gain) or where another non-daemon
thread is still alive: the interpreter would wait for that thread, and so does ``leave``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def leave(code: int | str | None) -> NoReturn:
    """End the process with ``code`` (as ``sys.exit`` takes it); promptly where that is safe (see the module)."""
    if not isinstance(code, int | None) or not prompt_exit_is_safe():
        sys.exit(code)
    _flush()
    atexit._run_exitfuncs()  # the handlers the interpreter would run, in the same (reverse) order
    _flush()
    os._exit(code or 0)


def prompt_exit_is_safe() -> bool:
    """True where torch is loaded and the main thread is the only non-daemon thread left."""
    if "torch" not in sys.modules:
        return False
    main = threading.main_thread()
    if threading.current_thread() is not main:
        return False
    return not any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or broken stream: nothing more can reach it
            if stream is not None:
                stream.flush()
