"""bench/bnb_memory.py as far as a CPU allows: argument parsing and its predictions."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bnb_memory.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bnb_memory", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bnb_memory"] = module
    spec.loader.exec_module(module)
    return module


def test_dry_run_prints_predictions(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--dry-run", "--models", "0.5b,3b", "--precisions", "4bit,bf16"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if not line.startswith(("model", "#"))]
    assert [(r[0], r[1]) for r in rows] == [("0.5b", "4bit"), ("0.5b", "bf16"), ("3b", "4bit"), ("3b", "bf16")]


def test_unknown_shape_is_refused(bench: ModuleType) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["--dry-run", "--models", "9b"])
    assert exc.value.code == 2


def test_4bit_prediction_counts_nf4_blocks(bench: ModuleType, tmp_path: Path) -> None:
    model_dir = bench.write_config(tmp_path / "m", "1.5b")
    h, inter, layers, vocab = 1536, 8960, 28, 151936
    kv = 2 * 128
    per_layer = [h * h, h * kv, h * kv, h * h, h * inter, h * inter, h * inter]  # q k v o gate up down
    rest = vocab * h + layers * (2 * h + h + 2 * kv) + h  # embeddings, norms and q/k/v biases stay 16-bit
    absmax = layers * sum(4 * math.ceil(n / 64) for n in per_layer)  # one fp32 per 64-weight block
    predicted = bench.predict(model_dir, "4bit", 576)
    assert predicted["weights"] == 2 * rest + layers * sum(per_layer) // 2 + absmax
    assert predicted["kv"] == layers * 2 * 128 * 2 * 2 * 576
