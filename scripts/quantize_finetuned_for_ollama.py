#!/usr/bin/env python3
"""Merge a LoRA fine-tune, quantize it to GGUF, register it with Ollama and point lorag's config at it.

The command users already know; a thin wrapper over `lorag model build` (same library call, same flags),
except that it registers with Ollama and updates the config by default.

    python scripts/quantize_finetuned_for_ollama.py --lora-path outputs/lora_X --quantization Q4_K_M
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lora-path", required=True, type=Path, help="PEFT LoRA adapter directory")
    p.add_argument("--base", type=Path, help="base model directory (default: from the adapter)")
    p.add_argument("--quantization", default=None, help="Q4_K_M (default), Q4_K_S, Q5_K_M, Q6_K, Q8_0, F16")
    p.add_argument("--name", help="Ollama model name (default: the adapter folder's name)")
    p.add_argument("--mode", choices=["merge", "adapter"], default=None)
    p.add_argument("--register", choices=["ollama", "none"], default="ollama")
    p.add_argument("--ollama-host", help="Ollama URL (default: llm.ollama_host from the config)")
    p.add_argument("--no-update-config", dest="update_config", action="store_false",
                   help="do not switch lorag's config to the new model")
    p.add_argument("--output", type=Path, help="output directory (default: models.output_dir)")
    p.add_argument("--config", type=Path, help="lorag config file (default ./lorag.yaml or $LORAG_CONFIG)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from lorag.cli.build import print_summary, run_build_command
    from lorag.errors import LoragError

    try:
        from lorag.config import check_config_file

        check_config_file(args.config, "--config")  # a mistyped --config must not build on the defaults
        result = run_build_command(
            quiet=args.json, config_path=args.config, lora_path=args.lora_path, base=args.base,
            quantization=args.quantization, name=args.name, mode=args.mode, register=args.register,
            ollama_host=args.ollama_host, update_config=args.update_config, output_dir=args.output)
    except LoragError as exc:
        from lorag.errors import clarify

        print(f"error: {clarify(exc)}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # the same guard as `lorag`: one line, the traceback in a log file
        from lorag.crashlog import failure_line

        print(f"error: {failure_line(exc, 'the build')}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_summary(result)
    return 0


if __name__ == "__main__":
    from lorag.cli.leave import leave

    leave(main())  # promptly: torch's teardown is not work to wait for once the model is built (lorag.cli.leave)
