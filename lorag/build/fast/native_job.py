"""The native metadata pass in a child process, so that it runs beside the producer thread without sharing its GIL."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import lorag
from lorag.build.children import guarded_command, guarded_env


class NativeJob:
    """write_native_skeleton(model_dir, work_dir, model_name) in a child; result() waits for its outcome."""

    def __init__(self, model_dir: Path, work_dir: Path, model_name: str | None) -> None:
        self.model_dir, self.work_dir, self.model_name = model_dir, work_dir, model_name
        root = str(Path(lorag.__file__).resolve().parents[1])  # this process's lorag, wherever it is installed
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""), "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_VERBOSITY": "error"}
        script = Path(__file__).with_name("_native_script.py")
        self._proc = subprocess.Popen(guarded_command(script, str(model_dir), str(work_dir), model_name or ""),
                                      env=guarded_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_imported(self) -> None:
        """Block until the child has loaded its modules (or died)."""
        assert self._proc.stdout is not None
        self._proc.stdout.readline()

    def result(self) -> str | None:
        """None when the skeleton is written, else why the converter must run instead.

        A child that fails in another way is run again in this process, so that its error is raised here as
        it would be without the child.
        """
        from lorag.build.fast.metadata import write_native_skeleton

        out, _ = self._proc.communicate()
        if self._proc.returncode == 0:
            try:
                fallback = json.loads(out.decode().strip().splitlines()[-1])["fallback"]  # after IMPORTED
                return None if fallback is None else str(fallback)
            except (ValueError, IndexError, KeyError):
                pass
        return write_native_skeleton(self.model_dir, self.work_dir, self.model_name)

    def kill(self) -> None:
        """Stop the child (after an error or a cancel)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
