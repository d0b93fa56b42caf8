"""The route rule: which candidate build (merged GGUF, or quantized base + GGUF LoRA) a build keeps.

Two measurements against the unquantized fine-tune, each blind to what the other sees:

* KL (and top-1) on a fixed probe text: how far the next-token distributions moved, position by position;
* greedy agreement on held-out prompts (lorag.build.behaviour): how much of the fine-tune's actual answers
  the build reproduces before it first says something else.

A low KL can hide a changed answer (one near-tie flipped early changes everything after it), so:

1. behaviour first: a candidate whose agreement is more than ``tolerance`` below the best candidate's loses,
   whatever its KL;
2. among the candidates within ``tolerance`` of the best agreement, the lowest KL wins;
3. ties (or no KL) go to the higher agreement, then to the earlier candidate (merge before adapter: one
   file, and every Ollama version imports it);
4. a candidate without an agreement score (it could not be measured) ranks after every scored one; with no
   scores at all the rule is KL alone.

Usage::

    choice = choose_route([Candidate("merge", kl=0.20, top1=0.77, agreement=0.91),
                           Candidate("adapter", kl=0.094, top1=0.86, agreement=0.52)])
    choice.chosen.name   # "merge": the adapter build's answers diverge (0.52 < 0.91 - 0.10)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOLERANCE = 0.10


@dataclass(frozen=True)
class Candidate:
    """One candidate build's measurements (None: not measured)."""

    name: str
    kl: float | None = None
    top1: float | None = None
    agreement: float | None = None
    exact: int | None = None
    prompts: int | None = None


@dataclass
class Choice:
    """The rule's verdict: the chosen candidate and one reason per candidate, in the order given."""

    chosen: Candidate
    candidates: list[Candidate]
    reasons: dict[str, str] = field(default_factory=dict)
    tolerance: float = DEFAULT_TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen.name, "tolerance": self.tolerance,
                "rule": "greedy agreement within tolerance of the best, then lowest KL",
                "candidates": [{"name": c.name, "kl_mean": c.kl, "top1": c.top1, "agreement": c.agreement,
                                "exact": c.exact, "prompts": c.prompts, "chosen": c is self.chosen,
                                "reason": self.reasons[c.name]} for c in self.candidates]}


def choose_route(candidates: Sequence[Candidate], tolerance: float = DEFAULT_TOLERANCE) -> Choice:
    """Apply the route rule (see the module docstring) to ``candidates``; the first one wins full ties."""
    if not candidates:
        raise ValueError("choose_route needs at least one candidate")
    scored = [c for c in candidates if c.agreement is not None]
    best = max((c.agreement for c in scored if c.agreement is not None), default=None)
    reasons: dict[str, str] = {}
    if best is None:
        contenders = list(candidates)
    else:
        contenders = [c for c in scored if c.agreement is not None and c.agreement >= best - tolerance - 1e-12]
        for c in candidates:
            if c.agreement is None:
                reasons[c.name] = "not chosen: no behaviour score (it could not be measured)"
            elif c not in contenders:
                reasons[c.name] = (f"not chosen: greedy agreement {c.agreement:.2f} is more than {tolerance:.2f} "
                                   f"below the best ({best:.2f}), whatever its KL")
    order = {c.name: i for i, c in enumerate(candidates)}
    chosen = min(contenders, key=lambda c: (_kl_key(c), -(c.agreement or 0.0), order[c.name]))
    for c in contenders:
        if c is chosen:
            reasons[c.name] = _why_chosen(c, contenders, best is None)
        else:
            reasons[c.name] = f"not chosen: within tolerance on agreement, but KL {_kl_text(c)} vs {_kl_text(chosen)}"
    return Choice(chosen, list(candidates), reasons, tolerance)


def _kl_key(c: Candidate) -> float:
    return c.kl if c.kl is not None else float("inf")


def _kl_text(c: Candidate) -> str:
    return f"{c.kl:.4f}" if c.kl is not None else "unmeasured"


def _why_chosen(c: Candidate, contenders: list[Candidate], unscored: bool) -> str:
    if unscored:
        return "chosen: lowest KL (no candidate had a behaviour score)"
    if len(contenders) == 1:
        return f"chosen: best greedy agreement ({c.agreement:.2f}); every other candidate is clearly lower"
    return f"chosen: lowest KL ({_kl_text(c)}) among candidates within tolerance of the best greedy agreement"


def candidate_of(name: str, fidelity: dict[str, Any]) -> Candidate:
    """A Candidate from a build record's (build.json) fidelity dict (its ``behaviour`` entry holds the agreement)."""
    behaviour = fidelity.get("behaviour") or {}
    return Candidate(name, kl=fidelity.get("kl_mean"), top1=fidelity.get("top1"),
                     agreement=behaviour.get("agreement"), exact=behaviour.get("exact"),
                     prompts=behaviour.get("prompts"))


def candidate_of_result(name: str, result: dict[str, Any]) -> Candidate:
    """A Candidate from a ``BuildResult.to_dict()`` (its behaviour score is the top-level ``behaviour`` key)."""
    return candidate_of(name, {**(result.get("fidelity") or {}), "behaviour": result.get("behaviour") or {}})
