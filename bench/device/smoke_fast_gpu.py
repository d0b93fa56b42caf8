"""A quick check of the GPU single pass before the long run: tiny Qwen2 + LoRA, Q4_K_S and Q4_K_M on CUDA.

Prints each build's stats (metadata source, profile, per-type tensor counts); exits non-zero on any failure.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    from lorag.build.fast import build_gguf_single_pass
    from tests.helpers.tiny import make_tiny_adapter, make_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = make_tiny_model(root / "tiny-qwen2")
        adapter = make_tiny_adapter(base, root / "lora")
        for qtype in ("Q4_K_S", "Q4_K_M"):
            stats = build_gguf_single_pass(base, adapter, root / f"{qtype}.gguf", qtype, None, device="cuda")
            print(qtype, json.dumps({k: stats[k] for k in ("seconds", "metadata_source", "types", "profile")}),
                  flush=True)
            assert stats["metadata_source"] in ("native", "cache"), stats.get("metadata_fallback")


if __name__ == "__main__":
    main()
