"""What a first build pays for Python imports and the tokenizer on a dropped page cache.

Usage (root, on the device): python import_cost.py MODEL_DIR
Each probe runs in a fresh process right after the page cache is dropped; wall seconds printed per probe.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

PROBES = {
    "import torch": "import torch",
    "torch + cuda init": "import torch; torch.zeros(1, device='cuda')",
    "transformers AutoTokenizer (+torch)": "from transformers import AutoTokenizer; AutoTokenizer.from_pretrained(M)",
    "tokenizers only": "from tokenizers import Tokenizer; Tokenizer.from_file(M + '/tokenizer.json').encode('x')",
    "lorag load_bpe (tokenizers, + torch)": (
        "import torch; from pathlib import Path; from lorag.build.fast.tokenizer_meta import load_bpe, "
        "load_tokenizer_json as j; print(type(load_bpe(Path(M), j(Path(M)))).__name__)"),
}


def drop() -> None:
    subprocess.run(["sync"], check=False)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def main() -> None:
    model = sys.argv[1]
    subprocess.run([sys.executable, "-c", "import torch, transformers, tokenizers; print(torch.__version__, "
                    "transformers.__version__, tokenizers.__version__)"], check=False)
    maps = subprocess.run([sys.executable, "-c", "import torch; torch.zeros(1, device='cuda'); "
                           "import os; fs=sorted({l.split()[-1] for l in open('/proc/self/maps') if '.so' in l}); "
                           "print(len(fs), round(sum(os.path.getsize(f) for f in fs)/1e9, 2), 'GB mapped .so')"],
                          capture_output=True, text=True, check=False)
    print(maps.stdout.strip(), maps.stderr.strip()[-300:])
    results: dict[str, list[float]] = {}
    for rnd in range(2):
        for name, code in PROBES.items():
            drop()
            t = time.monotonic()
            out = subprocess.run([sys.executable, "-c", f"M={model!r}\n{code}"], capture_output=True, text=True,
                                 check=False)
            s = time.monotonic() - t
            results.setdefault(name, []).append(round(s, 2))
            extra = (out.stdout.strip() + " " + out.stderr.strip()[-200:]).strip()
            print(f"round {rnd} {name}: {s:.2f} s {extra}", flush=True)
    drop()
    t = time.monotonic()
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import torch"], capture_output=True, text=True,
                         check=False)
    rows = [ln.split("|") for ln in out.stderr.splitlines() if ln.startswith("import time:") and "cumulative" not in ln]
    top = sorted(((int(r[1]), r[2].strip()) for r in rows if len(r) == 3), reverse=True)[:12]
    print(f"cold import torch with -X importtime: {time.monotonic() - t:.2f} s; top cumulative us:", top)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
