"""The route rule (lorag.build.choice.choose_route), table-driven, and the agreement measure it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lorag.build.behaviour import agreement
from lorag.build.choice import Candidate, candidate_of, candidate_of_result, choose_route
from lorag.build.finish import _behaviour_summary
from lorag.build.request import BuildResult

M, A = "merge", "adapter"


@pytest.mark.parametrize(
    ("merge", "adapter", "tolerance", "chosen", "loser_reason"),
    [
        # The adapter build has the lower KL but its greedy answers diverge: merge wins.
        ((0.20, 0.91), (0.094, 0.52), 0.10, M, "more than 0.10 below the best (0.91)"),
        # Both keep the answers (within tolerance): lower KL wins.
        ((0.20, 0.95), (0.094, 0.90), 0.10, A, "within tolerance on agreement, but KL 0.2000 vs 0.0940"),
        ((0.05, 1.00), (0.094, 1.00), 0.10, M, "within tolerance on agreement, but KL 0.0940 vs 0.0500"),
        # Exactly at the tolerance edge still counts as within.
        ((0.20, 0.90), (0.094, 0.80), 0.10, A, "within tolerance"),
        # A zero tolerance makes agreement decide alone.
        ((0.20, 0.90), (0.094, 0.89), 0.0, M, "more than 0.00 below the best (0.90)"),
        # Equal KL and agreement: the first candidate (merge) wins the tie.
        ((0.10, 0.90), (0.10, 0.90), 0.10, M, "within tolerance on agreement, but KL 0.1000 vs 0.1000"),
        # Unscored candidate ranks after a scored one whatever its KL.
        ((0.30, 0.70), (0.01, None), 0.10, M, "no behaviour score"),
        # No behaviour scores at all: KL alone.
        ((0.30, None), (0.01, None), 0.10, A, "within tolerance on agreement, but KL 0.3000 vs 0.0100"),
        # No KL on the better-agreeing one: among contenders, the measured KL wins.
        ((None, 0.95), (0.05, 0.93), 0.10, A, "KL unmeasured vs 0.0500"),
    ],
)
def test_route_rule(merge: tuple[float | None, float | None], adapter: tuple[float | None, float | None],
                    tolerance: float, chosen: str, loser_reason: str) -> None:
    candidates = [Candidate(M, kl=merge[0], agreement=merge[1]), Candidate(A, kl=adapter[0], agreement=adapter[1])]
    choice = choose_route(candidates, tolerance)
    assert choice.chosen.name == chosen
    loser = A if chosen == M else M
    assert loser_reason in choice.reasons[loser]
    assert choice.reasons[chosen].startswith("chosen: ")
    table = choice.to_dict()
    assert [row["name"] for row in table["candidates"]] == [M, A]
    assert [row["chosen"] for row in table["candidates"]] == [chosen == M, chosen == A]
    assert table["chosen"] == chosen and table["tolerance"] == tolerance


def test_single_candidate_is_chosen_and_empty_is_refused() -> None:
    only = choose_route([Candidate(M, kl=0.3, agreement=0.2)])
    assert only.chosen.name == M
    assert only.reasons[M] == "chosen: best greedy agreement (0.20); every other candidate is clearly lower"
    with pytest.raises(ValueError, match="at least one candidate"):
        choose_route([])


def test_reason_texts_when_the_lower_kl_loses() -> None:
    choice = choose_route([Candidate(M, kl=0.2014, agreement=0.91), Candidate(A, kl=0.0940, agreement=0.52)])
    assert choice.reasons == {
        A: "not chosen: greedy agreement 0.52 is more than 0.10 below the best (0.91), whatever its KL",
        M: "chosen: best greedy agreement (0.91); every other candidate is clearly lower",
    }


def test_candidate_of_reads_a_build_record() -> None:
    fidelity = {"kl_mean": 0.1, "top1": 0.8, "behaviour": {"agreement": 0.75, "exact": 5, "prompts": 8}}
    assert candidate_of(A, fidelity) == Candidate(A, kl=0.1, top1=0.8, agreement=0.75, exact=5, prompts=8)
    assert candidate_of(M, {"kl_mean": None, "behaviour": {"skipped": "x"}}) == Candidate(M)


def _demo_result(mode: str, kl: float, top1: float, agreement: float, exact: int) -> dict[str, Any]:
    """A BuildResult.to_dict() shaped like the demo's builds (behaviour summarised as finish() does)."""
    answers = [{"prompt": f"q{i}", "agreement": 1.0 if i < exact else 0.25} for i in range(8)]
    behaviour = _behaviour_summary({"agreement": agreement, "exact": exact, "prompts": 8, "answers": answers})
    return BuildResult(gguf=Path(f"{mode}/model-Q4_K_M.gguf"), modelfile=Path(f"{mode}/Modelfile"),
                       quantization="Q4_K_M", size_bytes=252_000_000, mode=mode,
                       fidelity={"kl_mean": kl, "top1": top1, "f16_kl_mean": 3.0e-5},
                       behaviour=behaviour).to_dict()


def test_candidate_of_result_reads_the_top_level_behaviour() -> None:
    result = _demo_result(A, 0.1107, 0.77, 0.88, 7)
    assert "behaviour" not in result["fidelity"]  # the record shape's place for it is empty in a result
    assert candidate_of_result(A, result) == Candidate(A, kl=0.1107, top1=0.77, agreement=0.88, exact=7, prompts=8)
    # Read as a build record, the same result has no behaviour score, and the rule would fall back to KL alone.
    assert candidate_of(A, result["fidelity"]) == Candidate(A, kl=0.1107, top1=0.77)


def test_candidate_of_result_without_a_behaviour_score() -> None:
    result = _demo_result(M, 0.2060, 0.72, 0.66, 4)
    result["behaviour"] = {"skipped": "no held-out prompts"}
    assert candidate_of_result(M, result) == Candidate(M, kl=0.2060, top1=0.72)
    result["fidelity"] = {}
    del result["behaviour"]
    assert candidate_of_result(M, result) == Candidate(M)


def test_demo_builds_are_chosen_on_agreement() -> None:
    builds = {M: _demo_result(M, 0.2060, 0.72, 0.66, 4), A: _demo_result(A, 0.1107, 0.77, 0.88, 7)}
    choice = choose_route([candidate_of_result(mode, result) for mode, result in builds.items()], 0.10)
    assert choice.chosen.name == A
    assert choice.reasons == {
        M: "not chosen: greedy agreement 0.66 is more than 0.10 below the best (0.88), whatever its KL",
        A: "chosen: best greedy agreement (0.88); every other candidate is clearly lower",
    }


@pytest.mark.parametrize(
    ("reference", "candidate", "expected"),
    [
        ([1, 2, 3, 4], [1, 2, 3, 4], 1.0),
        ([1, 2, 3, 4], [1, 2, 9, 4], 0.5),  # agreement stops at the first divergence, even if it re-joins
        ([1, 2, 3, 4], [9, 2, 3, 4], 0.0),
        ([1, 2, 3, 4], [1, 2], 0.5),  # a shorter candidate (it stopped early)
        ([1], [1, 7, 7], 1.0),
        ([], [5], 1.0),
    ],
)
def test_agreement_is_the_shared_prefix_share(reference: list[int], candidate: list[int], expected: float) -> None:
    assert agreement(reference, candidate) == expected
