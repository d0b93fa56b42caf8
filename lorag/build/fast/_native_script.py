"""Derive the native skeleton in a child process (metadata.write_native_skeleton) and print the outcome.

The parent streams the weights meanwhile; in its own process the metadata work would share the GIL with the
thread that drives the GPU. Prints IMPORTED once its imports are done, then one JSON line: {"fallback": null} or
{"fallback": "why the converter must run"}.
Arguments: MODEL_DIR WORK_DIR [MODEL_NAME]
"""

import json
import sys
from pathlib import Path


def main() -> None:
    from lorag.build.fast.metadata import preload_imports, write_native_skeleton

    preload_imports()
    # the parent holds its large reads back until here: imports of many small files crawl behind them
    print("IMPORTED", flush=True)

    model_name = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    fallback = write_native_skeleton(Path(sys.argv[1]), Path(sys.argv[2]), model_name)
    print(json.dumps({"fallback": fallback}), flush=True)


if __name__ == "__main__":
    main()
