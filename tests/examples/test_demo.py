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

    out = io.StringIO()
    first = run_finetune_demo(workdir=tmp_path / "demo", questions=QUESTIONS[:2], out=out)
    text = out.getvalue()
    assert first.ingested == {"added": 10, "updated": 0, "unchanged": 0, "failed": 0}
    assert set(first.builds) == {"merge", "adapter"}
    for build in first.builds.values():
        assert build["quantization"] == "Q4_K_M"
        assert Path(build["gguf"]).is_file()
        assert build["cache_hit"] is False
        assert "kl_mean" in build["fidelity"]
    assert "fidelity vs the unquantized fine-tune: KL" in text
    # The config now points at the chosen build.
    assert f"llm.model={first.build['gguf']}" in text
    # The fine-tune's habit shows; the base model's answers do not have it.
    assert [a.has_marker for a in first.tuned] == [True, True], [a.answer for a in first.tuned]
    assert [a.has_marker for a in first.base] == [False, False], [a.answer for a in first.base]
    assert all(a.citations for a in first.tuned)

    again = run_finetune_demo(workdir=tmp_path / "demo", questions=QUESTIONS[:1], out=io.StringIO())
    assert again.ingested["unchanged"] == 10
    assert all(build["cache_hit"] for build in again.builds.values())
    assert again.tuned[0].has_marker
