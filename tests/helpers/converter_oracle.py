"""Run lorag's converter dump (lorag/build/fast/_skeleton_script.py) with one extra pre-tokenizer name.

For tokenizers built in tests whose BPE fingerprint llama.cpp does not list (a Llama-3-style tokenizer over
the Qwen2 ranks): an unrecognised fingerprint gets the name in $ORACLE_PRE instead of the converter's error,
and everything else the converter writes stays its own. Arguments: those of _skeleton_script.py.
"""

import os
import runpy
import sys
from pathlib import Path


def main() -> None:
    tree = sys.argv[1]
    sys.path[:0] = [tree, str(Path(tree) / "gguf-py")]
    from conversion import base

    original = base.TextModel.get_vocab_base_pre

    def patched(self: object, tokenizer: object) -> str:
        try:
            return str(original(self, tokenizer))  # type: ignore[arg-type]
        except NotImplementedError:
            return os.environ["ORACLE_PRE"]

    base.TextModel.get_vocab_base_pre = patched  # type: ignore[method-assign]
    script = Path(__file__).resolve().parents[2] / "lorag" / "build" / "fast" / "_skeleton_script.py"
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
