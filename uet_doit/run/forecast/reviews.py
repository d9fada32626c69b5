"""The forecast of the reviews a run would make (`--dry-run`, `uet cost --forecast`).

A criterion is reviewed again when a step of its scope would run, or when no verdict is
kept for the work as it is now; a step under `review: {steps: true}` that would run is
reviewed once per attempt that passes its validation (1 + the review's fix attempts). Each
review is forecast like a step of the reviewer tool (task kind `review`, calibrated from
earlier reviews), its material counted as the files it reads.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from uet_doit.bundle.effective import effective_resilience
from uet_doit.bundle.model import Bundle, Step, Workstream
from uet_doit.cache.stores import configured_store
from uet_doit.run.forecast.estimate import History, StepForecast, StepPlan, forecast_step
from uet_doit.run.forecast.inputs import (
    bundle_kinds,
    file_reader,
    history,
    prices_for,
    tool_default,
)
from uet_doit.run.review.criteria import BUNDLE_SCOPE, criterion_reviewer, review_id
from uet_doit.run.review.material import criterion_material, made_by
from uet_doit.run.review.reviewer import ReviewRequest, VerdictBook, review_key
from uet_doit.run.step_spec import ReviewerSpec, step_reviewer
from uet_doit.state.store import RunStore
from uet_doit.tools.routing import load_router_config
from uet_doit.tools.tokens import token_counter

REVIEW_KIND = "review"


def _plan(
    rid: str, ws_id: str, reviewer: ReviewerSpec, question: str, files: tuple[str, ...]
) -> StepPlan:
    return StepPlan(
        step_id=rid,
        ws_id=ws_id,
        tool=reviewer.tool,
        instruction=question,
        files=files,
        task_kind=REVIEW_KIND,
        model=reviewer.model,
        tool_default=tool_default(reviewer.tool),
    )


def review_plans(bundle: Bundle, root: Path, states: dict[str, str]) -> list[tuple[StepPlan, int]]:
    """(plan, retries) of every review the run would make."""
    would = {k for k, v in states.items() if v in ("would run", "missing input")}
    book = VerdictBook(root, configured_store(root, None, dict(os.environ)))
    plans: list[tuple[StepPlan, int]] = []
    scopes: list[tuple[Workstream | None, list[Step]]] = [
        (ws, list(ws.steps)) for ws in bundle.workstreams
    ]
    scopes.append((None, [s for _, s in bundle.steps()]))
    for ws, steps in scopes:
        reviewer = criterion_reviewer(bundle, ws)
        sentences = [c for c in (ws or bundle).completion_criteria if isinstance(c, str)]
        if reviewer is None or not sentences:
            continue
        scope = ws.ws_id if ws is not None else BUNDLE_SCOPE
        own = Step.model_construct(step_id=f"{scope}.criteria")
        retries = effective_resilience(
            bundle, ws or Workstream.model_construct(ws_id=scope), own
        ).max_retries
        material, copies = criterion_material(steps, root)
        changes = any(s.step_id in would for s in steps)
        for index, sentence in enumerate(sentences):
            rid = review_id(scope, index)
            req = ReviewRequest(rid, "criterion", sentence, material, str(root), copies)
            if changes or book.get(review_key(reviewer, req)) is None:
                plans.append((_plan(rid, scope, reviewer, sentence, copies), retries or 0))
    for ws, step in bundle.steps():
        step_review = step_reviewer(bundle, ws, step)
        if step_review is None or step.step_id not in would:
            continue
        plan = _plan(
            f"{step.step_id}.review", ws.ws_id, step_review, step.instruction, made_by(step)
        )
        retries = effective_resilience(bundle, ws, step).max_retries or 0
        plans.append((replace(plan, max_fix_attempts=step_review.max_fix_attempts), retries))
    return plans


def review_forecasts(
    bundle: Bundle, root: Path, store: RunStore | None, states: dict[str, str]
) -> list[StepForecast]:
    plans = review_plans(bundle, root, states)
    if not plans:
        return []
    config = load_router_config(root)
    kinds = bundle_kinds(bundle)
    kinds.update({(bundle.bundle_id, p.step_id): REVIEW_KIND for p, _ in plans})
    seen = History(history(store, kinds) if store is not None else [])
    read = file_reader(root)
    out = []
    for plan, retries in plans:
        full = replace(plan, max_retries=retries, router_model=config.tool(plan.tool).model)
        out.append(forecast_step(full, prices_for(config), read, seen, token_counter))
    return out
