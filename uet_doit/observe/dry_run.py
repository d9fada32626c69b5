"""`uet run --dry-run` and `uet cost --forecast`: what would run, and its cost forecast
per step, workstream and bundle against every budget (flagging those the high end breaks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uet_doit.bundle.model import Bundle, Step, Workstream
from uet_doit.run.budget import Budget, CostLedger, budgets_for
from uet_doit.run.forecast.estimate import StepForecast, total
from uet_doit.run.forecast.inputs import bundle_forecasts
from uet_doit.run.forecast.reviews import review_forecasts
from uet_doit.state.store import RunStore

if TYPE_CHECKING:
    from uet_doit.cache.why import CacheForecast

_VERDICTS = {"up-to-date": "up to date", "error": "missing input"}


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


def verdicts(bundle: Bundle, root: Path, skip_ws: tuple[str, ...]) -> dict[str, str]:
    """step_id -> would run | up to date | missing input | skipped."""
    from uet_doit.run.doit.loader import task_status
    from uet_doit.run.runner import skipped_steps

    skip = skipped_steps(bundle, skip_ws)
    status = task_status(bundle, root, skip)
    return {
        s.step_id: (f"skipped: {s.skip}" if s.skip else "skipped")
        if s.step_id in skip
        else _VERDICTS.get(status.get(s.step_id, "run"), "would run")
        for _, s in bundle.steps()
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


def forecast_data(bundle: Bundle, root: Path, skip_ws: tuple[str, ...] = ()) -> dict[str, Any]:
    """The forecast of every step that would run, and every budget against it."""
    store = RunStore(root)
    states = verdicts(bundle, root, skip_ws)
    wanted = {k for k, v in states.items() if v in ("would run", "missing input")}
    forecasts = {f.step_id: f for f in bundle_forecasts(bundle, root, store, wanted)}
    reviews = review_forecasts(bundle, root, store, states)
    forecasts.update({f.step_id: f for f in reviews})
    states.update({f.step_id: "review" for f in reviews})
    low, high = total(forecasts.values())
    return {
        "bundle_id": bundle.bundle_id,
        "states": states,
        "forecasts": forecasts,
        "low_usd": low,
        "high_usd": high,
        "budgets": budget_checks(bundle, store, forecasts),
    }


def money(value: float) -> str:
    return f"${value:.4f}" if value < 10 else f"${value:,.2f}"


def span(low: float, high: float) -> str:
    return f"{money(low)}-{money(high)}"


def tokens(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def describe(f: StepForecast) -> str:
    """One line: model (why), tokens, price source, basis."""
    if f.cannot_run:
        return f"auto | cannot run: {f.cannot_run}"
    parts = [f"{f.tool} {f.model} ({f.model_from})" if f.model else f.tool]
    if f.choices:
        parts[0] = f"auto -> {'|'.join(f.choices)}, dearest: {parts[0]}"
    if f.tokens_in[1]:
        parts.append(
            f"{tokens(f.tokens_in[0])}-{tokens(f.tokens_in[1])} tokens in, "
            f"{tokens(f.tokens_out[0])}-{tokens(f.tokens_out[1])} out"
        )
    parts.append(f.price_source)
    parts.append(f"{f.basis}, up to {f.max_attempts} attempt(s)")
    return " | ".join(parts)


def forecast_report(data: dict[str, Any]) -> dict[str, Any]:
    """`forecast_data` as `uet cost --forecast --json` prints it."""
    steps = []
    for f in data["forecasts"].values():
        steps.append(
            {
                "step_id": f.step_id,
                "ws_id": f.ws_id,
                "state": data["states"][f.step_id],
                "tool": f.tool,
                "model": f.model,
                "model_from": f.model_from,
                "tokens_in": list(f.tokens_in),
                "tokens_out": list(f.tokens_out),
                "price_source": f.price_source,
                "attempt_usd": [round(v, 6) for v in f.attempt_usd],
                "max_attempts": f.max_attempts,
                "low_usd": round(f.low_usd, 6),
                "high_usd": round(f.high_usd, 6),
                "priced": f.priced,
                "basis": f.basis,
                "calibrated": f.calibrated,
                "assumptions": list(f.assumptions),
                "choices": list(f.choices),
                "cannot_run": f.cannot_run,
            }
        )
    return {
        "bundle_id": data["bundle_id"],
        "low_usd": round(data["low_usd"], 6),
        "high_usd": round(data["high_usd"], 6),
        "cannot_run_steps": sum(1 for f in data["forecasts"].values() if f.cannot_run),
        "steps": steps,
        "budgets": [c.to_dict() for c in data["budgets"]],
    }


def forecast_vs_actual(
    bundle: Bundle, store: RunStore, ran: dict[str, tuple[float | None, int]], started: float
) -> list[dict[str, Any]]:
    """Per step that ran (step_id -> actual cost or None when unknown, attempts): its
    forecast from the history before `started`, what it cost and where that fell; a last
    row totals them (the known costs)."""
    from uet_doit.run.forecast.inputs import bundle_forecasts

    rows: list[dict[str, Any]] = []
    for f in bundle_forecasts(bundle, store.root, store, set(ran), before=started):
        actual, attempts = ran[f.step_id]
        verdict = (
            "cost unknown"
            if actual is None
            else "above the high end"
            if actual > f.high_usd + 1e-9
            else "below the low end"
            if actual < f.low_usd - 1e-9
            else "within"
        )
        rows.append(
            {
                "step_id": f.step_id,
                "ws_id": f.ws_id,
                "tool": f"{f.tool} {f.model or ''}".strip(),
                "low_usd": f.low_usd,
                "high_usd": f.high_usd,
                "actual_usd": actual,
                "attempts": attempts,
                "verdict": verdict,
                "basis": f"{f.basis}; {f.price_source}",
            }
        )
    total_row: dict[str, Any] = dict.fromkeys(("step_id", "ws_id", "tool", "attempts"), "")
    total_row.update(verdict="", basis="")
    for key in ("low_usd", "high_usd", "actual_usd"):
        total_row[key] = sum(float(r[key] or 0.0) for r in rows)
    unknown = sum(1 for r in rows if r["actual_usd"] is None)
    total_row["verdict"] = f"+ {unknown} step(s) of unknown cost" if unknown else ""
    return [*rows, total_row]


@dataclass(frozen=True)
class DryRun:
    """What `uet run FILE --dry-run` found: the bundle with the `--budget` overrides, the
    forecast of what would run (`forecast_data`'s shape, step cache hits taken out of it)
    and what the step cache would restore."""

    bundle: Bundle
    data: dict[str, Any]
    cache: CacheForecast


def dry_run(bundle: Bundle, root: Path, budgets: list[str] | None, skip_ws: list[str] | None,
            cache: tuple[str, str | None] | None = None) -> DryRun:  # fmt: skip
    """`uet run FILE --dry-run`: nothing runs; what would, and what it would cost.
    `cache` is `uet run`'s (--cache flag, --cache-store URL)."""
    from uet_doit.run.budget import apply_overrides, parse_budget_args

    bundle = apply_overrides(bundle, parse_budget_args(budgets))
    data = forecast_data(bundle, root, tuple(skip_ws or ()))
    # the step cache (cache/why.py): hits leave the forecast; their savings are listed
    from uet_doit.cache.why import apply_cache_to_forecast

    cached = apply_cache_to_forecast(bundle, root, data, *(cache or ("default", None)))
    return DryRun(bundle, data, cached)
