"""Every budget of a bundle against the forecast of the steps under it that would run
(`--dry-run`, `uet cost --forecast`, and the step cache's part of them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from uet_doit.bundle.model import Bundle, Step, Workstream
from uet_doit.run.budget import Budget, CostLedger, budgets_for
from uet_doit.run.forecast.estimate import StepForecast, total
from uet_doit.state.store import RunStore


@dataclass(frozen=True)
class BudgetCheck:
    """A budget against the forecast of the steps under it that would run."""

    budget: Budget
    spent: float
    low: float
    high: float
    cannot_run: int = 0  # steps under it that have no tool to run with (not in low/high)

    @property
    def left(self) -> float:
        return max(0.0, self.budget.limit - self.spent)

    @property
    def verdict(self) -> str:
        if self.low > self.left + 1e-9:
            return "EXCEEDED even at the low end"
        if self.high > self.left + 1e-9:
            return "HIGH END EXCEEDS it"
        if self.cannot_run:
            return f"{self.cannot_run} step(s) cannot run (not counted)"
        return "fits"

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget.label,
            "limit_usd": self.budget.limit,
            "spent_usd": round(self.spent, 6),
            "left_usd": round(self.left, 6),
            "forecast_low_usd": round(self.low, 6),
            "forecast_high_usd": round(self.high, 6),
            "verdict": self.verdict,
            "cannot_run_steps": self.cannot_run,
            "policy": self.budget.policy,
        }


def budget_checks(
    bundle: Bundle, store: RunStore, forecasts: dict[str, StepForecast]
) -> list[BudgetCheck]:
    """Every budget of the bundle, outermost first, with the forecast under it."""
    ledger = CostLedger(store)
    under: dict[str, tuple[Budget, list[StepForecast]]] = {}
    for ws, step in bundle.steps():
        for budget in budgets_for(bundle, ws, step):
            entry = under.setdefault(budget.label, (budget, []))
            if step.step_id in forecasts:
                entry[1].append(forecasts[step.step_id])
    by_id = {ws.ws_id: ws for ws in bundle.workstreams}
    steps = {s.step_id for _, s in bundle.steps()}
    for f in forecasts.values():  # reviews: under their workstream's and the bundle's
        if f.step_id in steps:
            continue
        ws = by_id.get(f.ws_id) or Workstream.model_construct(ws_id=f.ws_id)
        for budget in budgets_for(bundle, ws, Step.model_construct(step_id=f.step_id)):
            under.setdefault(budget.label, (budget, []))[1].append(f)
    order = ("bundle", "workstream", "step")
    checks = []
    for budget, items in sorted(under.values(), key=lambda e: order.index(e[0].scope)):
        low, high = total(items)
        blocked = sum(1 for f in items if f.cannot_run)
        spent = ledger.spent(bundle.bundle_id, budget)
        checks.append(BudgetCheck(budget, spent, low, high, blocked))
    return checks
