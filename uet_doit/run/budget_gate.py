"""Budgets around an attempt: check and reserve before it, warnings and overruns after it.

The check and the reservation are one store transaction (CostLedger.reserve); what the
policy does when a budget says no depends on the budget's policy: warn, fail or pause.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from uet_doit.run.budget import RESERVATION_FLOOR_USD
from uet_doit.run.extensions import StepOutcome, StepPolicy
from uet_doit.state.records import EventKind, StepState
from uet_doit.state.unknown_cost import is_unknown, unknown_reason
from uet_doit.tools.failures import FailureClass

if TYPE_CHECKING:
    from uet_doit.run.executors.attempt import AttemptResult

_log = logging.getLogger(__name__)


def reserve_budget(policy: StepPolicy, tool: str) -> tuple[int | None, StepOutcome | None]:
    """Before each attempt: every enclosing budget must have room for its estimate."""
    spec, run_id = policy.spec, policy.ctx.run_id
    if not spec.budgets:
        return None, None
    estimate = policy.ledger.estimate(spec.estimated_cost_usd, tool, spec)
    reservation, over = policy.ledger.reserve(
        spec.bundle_id, spec.ws_id, spec.step_id, run_id, spec.budgets, estimate
    )
    if over is None:
        _log.debug("budget %s: reserved $%.4f", spec.step_id, estimate)
        return reservation, None
    _log.debug("budget %s: %s (%s)", spec.step_id, over.message, over.budget.policy)
    data = {
        "budget": over.budget.label,
        "spent": over.spent,
        "limit": over.budget.limit,
        "reserved": over.reserved,
        "estimate": estimate,
        "policy": over.budget.policy,
        "message": over.message,
    }
    if over.budget.policy == "warn":
        policy.store.event(run_id, EventKind.BUDGET_EXCEEDED, spec.step_id, **data)
        return reservation, None
    if over.budget.policy == "fail":
        policy.store.event(run_id, EventKind.BUDGET_FAILED, spec.step_id, **data)
        return None, policy.fail(FailureClass.BUDGET, over.message, tool)
    policy.store.event(run_id, EventKind.BUDGET_PAUSED, spec.step_id, **data)
    policy.state(StepState.PAUSED, over.message, tool)
    return None, StepOutcome(StepState.PAUSED, f"{spec.step_id} paused: {over.message}", tool)


def note_spend(policy: StepPolicy, result: AttemptResult) -> None:
    """Warnings at budget_warning_pct, and a step dearer than its own budget noted."""
    spec = policy.spec
    if not spec.budgets or not (result.cost_usd or is_unknown(result.cost_usd, result.cost_source)):
        return
    policy.ledger.warn_crossings(policy.ctx.run_id, spec.bundle_id, spec.budgets)
    for budget in spec.budgets:
        if budget.scope == "step":
            spent = policy.ledger.spent(spec.bundle_id, budget)
            if spent > budget.limit:
                policy.store.event(
                    policy.ctx.run_id,
                    EventKind.OVER_BUDGET,
                    spec.step_id,
                    budget=budget.label,
                    spent=spent,
                    limit=budget.limit,
                )


def charge_unknown(policy: StepPolicy, result: AttemptResult, tool: str) -> float | None:
    """What budgets count for an attempt of unknown cost: the step's estimate, else the
    high end of one attempt of its forecast (what it reserved), said in an event."""
    spec = policy.spec
    if not is_unknown(result.cost_usd, result.cost_source):
        return None
    # a local tool's forecast is $0 without history: an unknown cost is still never free
    charged = max(
        policy.ledger.estimate(spec.estimated_cost_usd, tool, spec), RESERVATION_FLOOR_USD
    )
    reason = unknown_reason(result.cost_source, result.model)
    basis = (
        "the step's estimated_cost_usd"
        if spec.estimated_cost_usd is not None
        else "the high end of one attempt of its forecast"
    )
    policy.store.event(
        policy.ctx.run_id,
        EventKind.COST_UNKNOWN,
        spec.step_id,
        reason=reason,
        charged_usd=charged,
        message=f"cost unknown ({reason}); budgets count it as ${charged:.4f}, {basis}",
    )
    return charged
