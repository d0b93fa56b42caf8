"""The committed sample adapter and its training data are what lorag's build pipeline expects."""

from __future__ import annotations

import json
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ADAPTER = EXAMPLES / "adapter"


def test_adapter_config_names_a_locally_resolvable_base() -> None:
    config = json.loads((ADAPTER / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["base_model_name_or_path"] == "gemma-3-270m-hf"
    assert config["r"] == 8
    assert config["lora_alpha"] == 16
    assert set(config["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert not config.get("modules_to_save")


def test_adapter_weights_are_small_safetensors() -> None:
    from safetensors import safe_open

    weights = ADAPTER / "adapter_model.safetensors"
    assert weights.stat().st_size < 16 * 2**20
    with safe_open(str(weights), "np") as f:
        keys = list(f.keys())
    assert keys and all(".lora_A." in k or ".lora_B." in k for k in keys)
    assert not any("embed" in k or "lm_head" in k for k in keys)


def test_lorag_reads_the_adapter() -> None:
    from lorag.inspect.adapter import read_adapter

    info = read_adapter(ADAPTER)
    assert info.base_name == "gemma-3-270m-hf"
    assert info.rank == 8
    assert info.scale == 2.0
    assert not info.touches_embeddings


def test_training_lines_point_at_real_passages() -> None:
    import unicodedata

    from lorag.rag.reader import load_document

    rows = [json.loads(line) for line in (EXAMPLES / "train_qa.jsonl").read_text(encoding="utf-8").splitlines()]
    assert 40 <= len(rows) <= 60
    texts = {p.name: "".join(page.text for page in load_document(p)) for p in (EXAMPLES / "corpus").iterdir()}
    for row in rows:
        assert set(row) == {"question", "answer", "source", "hint"}
        assert unicodedata.normalize("NFKC", row["hint"]) in texts[row["source"]], row
    questions = {q["question"] for q in json.loads((EXAMPLES / "questions.json").read_text(encoding="utf-8"))}
    assert not questions & {r["question"] for r in rows}, "held-out questions must not be trained on"
