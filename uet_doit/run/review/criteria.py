"""Sentence completion criteria judged by the reviewer the nearest `review` names.

A workstream's sentences are judged once its steps are done, with its steps and the files
they made as the material; the bundle's sentences with every step's. Without a reviewer a
sentence stays "to confirm".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uet_doit.bundle.effective import effective_review
from uet_doit.bundle.model import Bundle, Step, Workstream
from uet_doit.run.doit.compiler import build_spec
from uet_doit.run.review.material import criterion_material
from uet_doit.run.review.reviewer import Reviewer, ReviewRequest, Runtime
from uet_doit.run.step_spec import ReviewerSpec
from uet_doit.state.records import CriterionState

#: the scope name of the bundle's own criteria (as gates and criteria events spell it)
BUNDLE_SCOPE = "bundle"


def criterion_reviewer(bundle: Bundle, ws: Workstream | None) -> ReviewerSpec | None:
    """The reviewer of a workstream's sentences (`ws` None: the bundle's), if any."""
    review = effective_review(bundle, ws)
    if review is None or review.tool is None:
        return None
    return ReviewerSpec(
        tool=review.tool,
        model=review.model,
        max_cost_usd=review.max_cost_usd,
        timeout=review.timeout_seconds or 600.0,
    )


def review_id(scope: str, index: int) -> str:
    return f"{scope}.criterion-{index + 1}"


@dataclass(frozen=True)
class Judged:
    state: CriterionState
    detail: str
    extra: dict[str, Any]


class CriterionJudge:
    """Asks the reviewer about each sentence; what it says becomes the criterion's state."""

    def __init__(self, bundle: Bundle, root: Path, runtime: Runtime) -> None:
        self.bundle = bundle
        self.root = root
        self.reviewer = Reviewer(runtime)

    def reviews(self, ws: Workstream | None) -> bool:
        return criterion_reviewer(self.bundle, ws) is not None

    def judge(self, ws: Workstream | None, index: int, sentence: str) -> Judged:
        reviewer = criterion_reviewer(self.bundle, ws)
        assert reviewer is not None
        scope = ws.ws_id if ws is not None else BUNDLE_SCOPE
        steps = [s for _, s in self.bundle.steps()] if ws is None else list(ws.steps)
        rid = review_id(scope, index)
        base_ws = ws if ws is not None else Workstream.model_construct(ws_id=BUNDLE_SCOPE)
        # not validated: an id of 128 characters plus `.criterion-N` is longer than ids may be
        own = Step.model_construct(step_id=rid, tool_profile_id=reviewer.tool)
        base = build_spec(self.bundle, base_ws, own, self.root)
        material, copies = criterion_material(steps, self.root)
        req = ReviewRequest(rid, "criterion", sentence, material, str(self.root), copies)
        done = self.reviewer.review(base, reviewer, req)
        verdict = done.verdict
        extra: dict[str, Any] = {
            "reviewer": done.reviewer,
            "evidence": verdict.evidence,
            "files": list(verdict.files),
            "cached": done.cached,
        }
        if done.wrote:
            extra["refused_writes"] = list(done.wrote)
        if done.paused:  # the run ends paused (exit 4): raise the budget and run again
            extra["paused"] = True
            detail = verdict.evidence.removeprefix("no verdict: ")
            return Judged(CriterionState.NOT_EVALUATED, f"review paused: {detail}", extra)
        state = CriterionState.MET if verdict.met else CriterionState.UNMET
        return Judged(state, verdict.evidence, extra)
