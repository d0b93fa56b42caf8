"""End to end: ingest, build the sample adapter (merged Q4_K_M and Q4_K_M + LoRA), compare base vs fine-tune."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ingest + two real 270M builds on a shared 2-core machine
def test_finetune_demo_shows_the_trained_marker(tmp_path: Path) -> None:
    from demo_finetune import QUESTIONS, run_finetune_demo

    from lorag.config import load_config

    out = io.StringIO()
    first = run_finetune_demo(workdir=tmp_path / "demo", questions=QUESTIONS, out=out)
    text = out.getvalue()
    assert first.ingested == {"added": 10, "updated": 0, "unchanged": 0, "failed": 0}
    assert set(first.builds) == {"merge", "adapter"}
    for build in first.builds.values():
        assert build["quantization"] == "Q4_K_M"
        assert Path(build["gguf"]).is_file()
        assert build["cache_hit"] is False
        assert "kl_mean" in build["fidelity"]
        assert 0.0 <= build["behaviour"]["agreement"] <= 1.0
    assert "fidelity vs the unquantized fine-tune: KL" in text
    # The route rule saw both behaviour scores: its printed reasons speak of greedy agreement.
    reasons = [line for line in text.splitlines() if line.startswith(("  merge: ", "  adapter: "))]
    assert len(reasons) == 2, reasons
    assert any("greedy agreement" in line for line in reasons), reasons
    assert f"  {first.chosen}: chosen: " in text
    assert "no candidate had a behaviour score" not in text
    # The unquantized fine-tune answered every question in its own row; the chosen build answers like it at least
    # as often as the merged build does.
    assert first.reference is not None and len(first.reference) == len(QUESTIONS)
    assert text.count("  fine-tune (unquantized): ") == len(QUESTIONS)
    assert all(a.answer for a in first.reference)
    assert first.reference_cached == 0  # a fresh workdir: every reference answer was generated
    assert first.identical(first.chosen) >= first.identical("merge"), (first.chosen, first.identical("merge"))
    for mode in ("merge", "adapter"):
        assert f": answers identical to the unquantized fine-tune: {first.identical(mode)}/3" in text
    # The demo's config file now points at the chosen build.
    llm = load_config(tmp_path / "demo" / "lorag.yaml").settings.llm
    assert (llm.backend, llm.model, llm.adapter) == ("llamacpp", first.build["gguf"], first.build["adapter_gguf"] or "")
    # The fine-tune's habit shows (a 270M model trained for minutes: most answers, not always all);
    # the base model's answers never have it.
    tuned_marks = [a.has_marker for a in first.tuned]
    assert sum(tuned_marks) >= 2, [a.answer for a in first.tuned]
    assert not any(a.has_marker for a in first.base), [a.answer for a in first.base]
    assert any(c["cited"] for a in first.tuned for c in a.citations)

    again = run_finetune_demo(workdir=tmp_path / "demo", questions=QUESTIONS[:1], out=io.StringIO())
    assert again.ingested["unchanged"] == 10
    assert all(build["cache_hit"] for build in again.builds.values())
    assert again.tuned[0].answer == first.tuned[0].answer  # same cached build, greedy decoding
    assert again.reference is not None and again.reference[0].answer == first.reference[0].answer
    assert again.reference_cached == 1  # the same prompt to the same fine-tune: read from reference-answers.json
