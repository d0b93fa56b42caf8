"""End to end: ingest, build the sample adapter (merge → GGUF → Q4_K_M), compare base vs fine-tune."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))


@pytest.mark.slow
def test_finetune_demo_shows_the_trained_marker(tmp_path: Path) -> None:
    from demo_finetune import QUESTIONS, run_finetune_demo

    out = io.StringIO()
    first = run_finetune_demo(workdir=tmp_path / "demo", questions=QUESTIONS[:2], out=out)
    text = out.getvalue()
    assert first.ingested == {"added": 10, "updated": 0, "unchanged": 0, "failed": 0}
    assert first.build["quantization"] == "Q4_K_M"
    assert Path(first.build["gguf"]).is_file()
    assert first.build["config_updated"] is True
    assert not first.build["cache_hit"]
    assert "fidelity" in text and "kl_mean" in text
    # The fine-tune's habit shows; the base model's answers do not have it.
    assert [a.has_marker for a in first.tuned] == [True, True], [a.answer for a in first.tuned]
    assert [a.has_marker for a in first.base] == [False, False], [a.answer for a in first.base]
    assert all(a.citations for a in first.tuned)

    again = run_finetune_demo(workdir=tmp_path / "demo", questions=QUESTIONS[:1], out=io.StringIO())
    assert again.build["cache_hit"] is True
    assert again.ingested["unchanged"] == 10
    assert again.tuned[0].has_marker
