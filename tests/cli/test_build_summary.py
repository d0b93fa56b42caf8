"""`lorag model build`'s summary: KL, the behaviour line and, in auto mode, the route-choice table."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorag.build.choice import Candidate, choose_route
from lorag.build.request import BuildResult


def _result(tmp_path: Path, **kw: object) -> BuildResult:
    gguf = tmp_path / "model-Q4_K_M.gguf"
    return BuildResult(gguf=gguf, modelfile=tmp_path / "Modelfile", quantization="Q4_K_M", size_bytes=253_112_896,
                       stages={"validate": 0.1, "verify": 30.0}, fidelity={"kl_mean": 0.1107, "top1": 0.7674},
                       **kw)  # type: ignore[arg-type]


def test_summary_prints_behaviour_and_the_route_choice(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from lorag.cli.build import print_summary

    monkeypatch.setenv("COLUMNS", "200")
    choice = choose_route([Candidate("merge", kl=0.2060, top1=0.72, agreement=0.6609, exact=4, prompts=8),
                           Candidate("adapter", kl=0.1107, top1=0.77, agreement=0.875, exact=7, prompts=8)])
    behaviour = {"agreement": 0.875, "exact": 7, "prompts": 8, "max_new_tokens": 32, "generic": False,
                 "source": "examples/eval_qa.jsonl", "reference": "llama.cpp F16 GGUF + F16 GGUF LoRA (base-1.gguf)"}
    print_summary(_result(tmp_path, behaviour=behaviour, mode="adapter", route_choice=choice.to_dict()))
    out = capsys.readouterr().out
    assert "fidelity vs the unquantized fine-tune: KL 0.1107, top-1 77%" in out
    assert ("behaviour on held-out prompts: greedy agreement 0.88, 7/8 answers identical (first 32 tokens) to the "
            "unquantized fine-tune (llama.cpp F16 GGUF + F16 GGUF LoRA (base-1.gguf); examples/eval_qa.jsonl)") in out
    assert "route choice (greedy agreement within 0.10 of the best, then lowest KL)" in out
    merge_row = next(line for line in out.splitlines() if line.strip("│ ").startswith("merge"))
    adapter_row = next(line for line in out.splitlines() if line.strip("│ ").startswith("adapter"))
    assert "0.2060" in merge_row and "0.66" in merge_row and "4/8" in merge_row and "yes" not in merge_row
    assert "0.1107" in adapter_row and "0.88" in adapter_row and "7/8" in adapter_row and "yes" in adapter_row


def test_summary_says_when_the_behaviour_score_was_skipped_or_generic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lorag.cli.build import print_summary

    monkeypatch.setenv("COLUMNS", "200")
    print_summary(_result(tmp_path, behaviour={"skipped": "behaviour score skipped: OSError: boom"}))
    assert "behaviour: behaviour score skipped: OSError: boom" in capsys.readouterr().out
    generic = {"agreement": 1.0, "exact": 6, "prompts": 6, "max_new_tokens": 32, "generic": True, "source": "generic",
               "reference": "transformers fp32"}
    print_summary(_result(tmp_path, behaviour=generic))
    out = capsys.readouterr().out
    assert "6/6 answers identical" in out and "generic built-in prompts" in out and "route choice" not in out
