"""Cost ledger and budgets: spend per step, workstream and bundle, checked before launch.

Spend is the sum of every attempt's cost (failed and retried ones too) for the bundle in
this project since the last `uet cost reset`. A step may start only if, for every budget
around it, spent + reserved (by steps running now) + its estimate stays within the limit;
the check and the reservation are one SQLite write transaction, so parallel workers
cannot all slip through, and overshoot is bounded by what is already running.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from uet_doit.bundle.model import Bundle, Step, Workstream
from uet_doit.state.store import RunStore, current_session

DEFAULT_POLICY = "pause_and_notify"


@dataclass(frozen=True)
class Budget:
    scope: str  # step | workstream | bundle
    scope_id: str
    limit: float
    policy: str = DEFAULT_POLICY
    warning_pct: float | None = None

    @property
    def label(self) -> str:
        return f"{self.scope} {self.scope_id}"


@dataclass(frozen=True)
class Overrun:
    """A budget a step may not start under."""

    budget: Budget
    spent: float
    reserved: float
    estimate: float

    @property
    def message(self) -> str:
        return (
            f"budget of {self.budget.label} reached: spent ${self.spent:.4f}"
            + (f" + ${self.reserved:.4f} reserved" if self.reserved else "")
            + (f" + ${self.estimate:.4f} estimated" if self.estimate else "")
            + f" > limit ${self.budget.limit:.4f}"
        )


def budgets_for(bundle: Bundle, ws: Workstream, step: Step) -> tuple[Budget, ...]:
    """The budgets around a step, innermost first. The policy is the nearest one set."""
    policy = ws.on_budget_exceeded or bundle.on_budget_exceeded or DEFAULT_POLICY
    warn = ws.budget_warning_pct or bundle.budget_warning_pct
    out: list[Budget] = []
    if step.max_cost_usd is not None:
        out.append(Budget("step", step.step_id, step.max_cost_usd, policy, warn))
    if ws.max_cost_usd is not None:
        out.append(Budget("workstream", ws.ws_id, ws.max_cost_usd, policy, warn))
    if bundle.max_cost_usd is not None:
        out.append(
            Budget(
                "bundle",
                bundle.bundle_id,
                bundle.max_cost_usd,
                bundle.on_budget_exceeded or DEFAULT_POLICY,
                bundle.budget_warning_pct,
            )
        )
    return tuple(out)


def apply_overrides(bundle: Bundle, overrides: dict[str, float]) -> Bundle:
    """`--budget WS-ID=0.50` / `--budget bundle=20` / `--budget STEP-ID=1`: a changed copy."""
    from uet_doit.errors import UsageError

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
    from uet_doit.errors import UsageError

    out: dict[str, float] = {}
    for item in values or ():
        key, sep, amount = item.partition("=")
        try:
            value = float(amount) if sep and key else -1.0
        except ValueError:
            value = -1.0
        if value < 0:
            msg = f"--budget {item!r}: expected SCOPE=DOLLARS"
            raise UsageError(msg, "e.g. --budget WS-K1-CRITICAL=0.50 or --budget bundle=20")
        out[key] = value
    return out


class CostLedger:
    """Spend and reservations in state.db."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def _since(self, conn: Any, bundle_id: str) -> float:
        row = conn.execute(
            "SELECT reset_at FROM cost_resets WHERE bundle_id=?", (bundle_id,)
        ).fetchone()
        return float(row[0]) if row else 0.0

    def spent(self, bundle_id: str, budget: Budget, conn: Any = None) -> float:
        conn = conn or self.store.conn
        column = {"step": "step_id", "workstream": "ws_id", "bundle": "bundle_id"}[budget.scope]
        row = conn.execute(
            f"SELECT coalesce(sum(cost_usd), 0) FROM attempts WHERE bundle_id=? AND {column}=? "
            "AND started >= ?",
            (bundle_id, budget.scope_id, self._since(conn, bundle_id)),
        ).fetchone()
        return float(row[0])

    def _reserved(self, conn: Any, bundle_id: str, budget: Budget) -> float:
        column = {"step": "step_id", "workstream": "ws_id", "bundle": "bundle_id"}[budget.scope]
        row = conn.execute(
            f"SELECT coalesce(sum(amount), 0) FROM reservations WHERE bundle_id=? AND {column}=? "
            "AND session=?",
            (bundle_id, budget.scope_id, current_session()),
        ).fetchone()
        return float(row[0])

    def estimate(self, step_estimate: float | None, tool: str) -> float:
        """The step's own estimate, else the median cost of this tool's finished steps."""
        if step_estimate is not None:
            return step_estimate
        rows = self.store.conn.execute(
            "SELECT cost_usd FROM attempts WHERE tool=? AND outcome='succeeded' AND "
            "cost_usd IS NOT NULL ORDER BY id DESC LIMIT 200",
            (tool,),
        ).fetchall()
        return float(statistics.median(r[0] for r in rows)) if rows else 0.0

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

        warned: Overrun | None = None
        with self.store.transaction() as conn:
            for budget in budgets:
                spent = self.spent(bundle_id, budget, conn)
                reserved = self._reserved(conn, bundle_id, budget)
                exhausted = spent + reserved >= budget.limit - 1e-9
                if exhausted or spent + reserved + estimate > budget.limit + 1e-9:
                    over = Overrun(budget, spent, reserved, estimate)
                    if budget.policy != "warn":
                        return None, over
                    warned = warned or over
            cur = conn.execute(
                "INSERT INTO reservations (run_id, bundle_id, ws_id, step_id, amount, created, "
                "session) VALUES (?,?,?,?,?,?,?)",
                (run_id, bundle_id, ws_id, step_id, estimate, time.time(), current_session()),
            )
        return int(cur.lastrowid or 0), warned

    def release(self, reservation_id: int | None) -> None:
        if reservation_id:
            self.store.conn.execute("DELETE FROM reservations WHERE id=?", (reservation_id,))

    def drop_stale_reservations(self) -> None:
        """Reservations of runners that are gone hold no money."""
        self.store.conn.execute(
            "DELETE FROM reservations WHERE session IS NOT ? ", (current_session(),)
        )

    def reset(self, bundle_id: str) -> None:
        self.store.conn.execute(
            "INSERT OR REPLACE INTO cost_resets VALUES (?, ?)", (bundle_id, time.time())
        )

    def warn_crossings(self, run_id: str, bundle_id: str, budgets: tuple[Budget, ...]) -> list[str]:
        """`budget_warning_pct` crossed: one warning event per budget (until a reset)."""
        notes = []
        for budget in budgets:
            if not budget.warning_pct:
                continue
            spent = self.spent(bundle_id, budget)
            if spent < budget.limit * budget.warning_pct / 100:
                continue
            since = self._since(self.store.conn, bundle_id)
            seen = self.store.conn.execute(
                "SELECT 1 FROM events WHERE kind='budget_warning' AND ts >= ? AND "
                "json_extract(data, '$.budget') = ? AND json_extract(data, '$.bundle_id') = ?",
                (since, budget.label, bundle_id),
            ).fetchone()
            if seen:
                continue
            note = (
                f"{budget.label} has used ${spent:.4f} of ${budget.limit:.4f} "
                f"({100 * spent / budget.limit:.0f}% >= {budget.warning_pct:.0f}%)"
            )
            self.store.event(
                run_id,
                "budget_warning",
                None,
                budget=budget.label,
                bundle_id=bundle_id,
                spent=spent,
                limit=budget.limit,
                message=note,
            )
            notes.append(note)
        return notes
