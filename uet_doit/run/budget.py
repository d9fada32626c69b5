"""Cost ledger and budgets: spend per step, workstream and bundle, checked before launch.

Spend is the sum of every attempt's cost (failed and retried ones too) for the bundle in
this project since the last `uet cost reset`. A step may start only if, for every budget
around it, spent + reserved (by steps running now) + its estimate stays within the limit;
the check and the reservation are one SQLite write transaction, so parallel workers
cannot all slip through, and overshoot is bounded by what is already running.
"""

from __future__ import annotations

import statistics

from uet_doit.bundle.model import Bundle
from uet_doit.errors import UsageError
from uet_doit.run.forecast.inputs import spec_forecast
from uet_doit.run.step_spec import Budget, Overrun, StepSpec, budgets_for
from uet_doit.state.ledger import ScopeSpend
from uet_doit.state.records import EventKind
from uet_doit.state.store import RunStore
from uet_doit.tools.adapters import tool_traits
from uet_doit.tools.routing import RouterConfig, load_router_config


def apply_overrides(bundle: Bundle, overrides: dict[str, float]) -> Bundle:
    """`--budget WS-ID=0.50` / `--budget bundle=20` / `--budget STEP-ID=1`: a changed copy."""
    changed = bundle.model_copy(deep=True)
    for key, value in overrides.items():
        if key == "bundle":
            changed.max_cost_usd = value
            continue
        hit = False
        for ws in changed.workstreams:
            if ws.ws_id == key:
                ws.max_cost_usd, hit = value, True
            for step in ws.steps:
                if step.step_id == key:
                    step.max_cost_usd, hit = value, True
        if not hit:
            msg = f"--budget {key}={value}: no workstream or step {key!r}"
            raise UsageError(msg, "use `bundle`, a ws_id or a step_id")
    return changed


def parse_budget_args(values: list[str] | None) -> dict[str, float]:
    """`--budget SCOPE=DOLLARS` values; a budget must be a finite amount of zero or more
    (NaN compares false with every spend and `inf` is no budget at all, so both would
    silently switch the limit off)."""
    import math

    example = "e.g. --budget WS-K1-CRITICAL=0.50 or --budget bundle=20"
    out: dict[str, float] = {}
    for item in values or ():
        key, sep, amount = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--budget {item!r}: expected SCOPE=DOLLARS", example)
        try:
            value = float(amount)
        except ValueError:
            msg = f"--budget {item!r}: {amount!r} is not an amount of dollars"
            raise UsageError(msg, example) from None
        if not math.isfinite(value) or value < 0:
            msg = f"--budget {item!r}: {amount!r} is not a finite amount of zero or more"
            raise UsageError(msg, example)
        out[key] = value
    return out


#: what a running step reserves when nothing better is known: steps admitted together can
#: never all reserve $0 (docs/runs.md, Budgets)
RESERVATION_FLOOR_USD = 0.01


class CostLedger:
    """Spend, estimates and reservations of one project, through the run store."""

    def __init__(self, store: RunStore, session: str = "") -> None:
        self.store = store
        self.session = session

    def spent(self, bundle_id: str, budget: Budget) -> float:
        return self.store.ledger.spent(bundle_id, budget.scope, budget.scope_id)

    def estimate(
        self, step_estimate: float | None, tool: str, spec: StepSpec | None = None
    ) -> float:
        """What an attempt reserves: the step's own estimate, else the high end of one attempt
        of its forecast (so steps admitted together hold what they may cost); without a
        spec, the median cost of this tool's finished steps; never less than a floor for AI
        tools (a step that costs money never reserves nothing)."""
        if step_estimate is not None:
            return step_estimate
        if spec is not None:
            local = tool_traits(tool).local
            config = RouterConfig() if local else load_router_config(self.store.root)
            high = spec_forecast(spec, tool, self.store, config).attempt_usd[1]
            return high if high > 0 or local else RESERVATION_FLOOR_USD
        costs = self.store.ledger.recent_costs(tool)
        if costs:
            return float(statistics.median(costs))
        return 0.0 if tool_traits(tool).local else RESERVATION_FLOOR_USD

    def reserve(
        self,
        bundle_id: str,
        ws_id: str,
        step_id: str,
        run_id: str,
        budgets: tuple[Budget, ...],
        estimate: float,
    ) -> tuple[int | None, Overrun | None]:
        """Check every budget and reserve the estimate, atomically: a step may not start
        when its budget is used up, or when its estimate would not fit. An overrun under a
        `warn` budget is reported but does not stop the reservation."""
        by_scope = {(b.scope, b.scope_id): b for b in budgets}

        def decide(seen: list[ScopeSpend]) -> tuple[bool, Overrun | None]:
            warned: Overrun | None = None
            for row in seen:
                budget = by_scope[(row.scope, row.scope_id)]
                used = row.spent + row.reserved
                if used >= budget.limit - 1e-9 or used + estimate > budget.limit + 1e-9:
                    over = Overrun(budget, row.spent, row.reserved, estimate)
                    if budget.policy != "warn":
                        return False, over
                    warned = warned or over
            return True, warned

        return self.store.ledger.reserve_if(
            bundle_id,
            list(by_scope),
            self.session,
            decide,
            run_id=run_id,
            ws_id=ws_id,
            step_id=step_id,
            amount=estimate,
        )

    def release(self, reservation_id: int | None) -> None:
        if reservation_id:
            self.store.ledger.release(reservation_id)

    def drop_stale_reservations(self) -> None:
        """Reservations of runners that are gone hold no money."""
        self.store.ledger.drop_reservations_except(self.session)

    def reset(self, bundle_id: str) -> None:
        self.store.ledger.reset_costs(bundle_id)

    def warn_crossings(self, run_id: str, bundle_id: str, budgets: tuple[Budget, ...]) -> list[str]:
        """`budget_warning_pct` crossed: one warning event per budget (until a reset)."""
        notes = []
        for budget in budgets:
            if not budget.warning_pct:
                continue
            spent = self.spent(bundle_id, budget)
            if spent < budget.limit * budget.warning_pct / 100:
                continue
            if self.store.ledger.warning_recorded(bundle_id, budget.label):
                continue
            note = (
                f"{budget.label} has used ${spent:.4f} of ${budget.limit:.4f} "
                f"({100 * spent / budget.limit:.0f}% >= {budget.warning_pct:.0f}%)"
            )
            self.store.event(
                run_id,
                EventKind.BUDGET_WARNING,
                None,
                budget=budget.label,
                bundle_id=bundle_id,
                spent=spent,
                limit=budget.limit,
                message=note,
            )
            notes.append(note)
        return notes


__all__ = ["Budget", "CostLedger", "Overrun", "apply_overrides", "budgets_for", "parse_budget_args"]
