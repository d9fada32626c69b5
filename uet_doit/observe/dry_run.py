"""`uet run --dry-run` and `uet cost --forecast`: what would run, and its cost forecast
per step, workstream and bundle against every budget (flagging those the high end breaks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from uet_doit.bundle.model import Bundle
from uet_doit.run.forecast.budgets import BudgetCheck, budget_checks
from uet_doit.run.forecast.estimate import StepForecast, total
from uet_doit.run.forecast.inputs import bundle_forecasts
from uet_doit.run.forecast.reviews import review_forecasts
from uet_doit.state.store import RunStore

_VERDICTS = {"up-to-date": "up to date", "error": "missing input"}


def verdicts(bundle: Bundle, root: Path, skip_ws: tuple[str, ...]) -> dict[str, str]:
    """step_id -> would run | up to date | missing input | skipped."""
    from uet_doit.run.doit.loader import task_status
    from uet_doit.run.doit.task_names import skipped_steps

    skip = skipped_steps(bundle, skip_ws)
    status = task_status(bundle, root, skip)
    return {
        s.step_id: (f"skipped: {s.skip}" if s.skip else "skipped")
        if s.step_id in skip
        else _VERDICTS.get(status.get(s.step_id, "run"), "would run")
        for _, s in bundle.steps()
    }


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


def print_forecast(bundle: Bundle, data: dict[str, Any], verbosity: int = 1) -> None:
    states: dict[str, str] = data["states"]
    forecasts: dict[str, StepForecast] = data["forecasts"]
    checks = {c.budget.label: c for c in data["budgets"]}
    for ws in bundle.workstreams:
        serial = "" if ws.parallel_ok else " (parallel_ok: false: one step at a time, in order)"
        background = " [background]" if ws.priority == "background" else ""
        print(f"{ws.ws_id}: {ws.title}{background}{serial}")
        for step in ws.steps:
            f = forecasts.get(step.step_id)
            cost = span(f.low_usd, f.high_usd) if f else ""
            if f and f.cannot_run:
                cost = "CANNOT RUN (no tool)"
            unpriced = " (no price: not counted)" if f and not f.priced else ""
            alone = " (parallel_ok: false: runs alone)" if step.parallel_ok is False else ""
            line = f"  {step.step_id:<32} {states[step.step_id]:<14} {cost}{unpriced}{alone}"
            print(line)
            if f is not None:
                print(f"      {describe(f)}")
                for note in f.assumptions if verbosity >= 2 else ():
                    print(f"      - {note}")
            check = checks.get(f"step {step.step_id}")
            if check is not None and f is not None:
                print(f"      {_against(check)}")
        own = {s.step_id for s in ws.steps}
        reviews = [f for f in forecasts.values() if f.ws_id == ws.ws_id and f.step_id not in own]
        for f in reviews:
            _print_review(f, verbosity)
        ws_items = [forecasts[s.step_id] for s in ws.steps if s.step_id in forecasts] + reviews
        low, high = total(ws_items)
        check = checks.get(f"workstream {ws.ws_id}")
        tail = f" {_against(check)}" if check else ""
        print(f"  forecast {span(low, high)}{tail}")
    blocked = [f for f in forecasts.values() if f.cannot_run]
    mine = {s.step_id for _, s in bundle.steps()}
    known = {ws.ws_id for ws in bundle.workstreams}
    for f in forecasts.values():
        if f.step_id not in mine and f.ws_id not in known:  # the bundle's own criteria
            _print_review(f, verbosity)
    n = len([f for f in forecasts if f in mine]) - len(blocked)
    check = checks.get(f"bundle {bundle.bundle_id}")
    tail = f" {_against(check)}" if check else " (no bundle budget)"
    asked = len(forecasts) - len([f for f in forecasts if f in mine])
    reviews_note = f" and {asked} review(s)" if asked else ""
    print(
        f"{n} step(s){reviews_note} would run; forecast "
        f"{span(data['low_usd'], data['high_usd'])}{tail}"
    )
    if blocked:
        print(f"  ! {len(blocked)} step(s) cannot run: {blocked[0].cannot_run}")
    flagged = [c for c in data["budgets"] if c.verdict.startswith(("EXCEEDED", "HIGH END"))]
    for c in flagged:
        print(
            f"  ! {c.budget.label}: forecast {span(c.low, c.high)} > {money(c.left)} left "
            f"({c.budget.policy}): steps may be paused; raise it with --budget"
        )
    no_price = sorted({f.model or "?" for f in forecasts.values() if not f.priced})
    if no_price:
        names = ", ".join(no_price)
        print(f"  no price for {names}: add them under `prices` in router_config.json")


def _print_review(f: StepForecast, verbosity: int) -> None:
    """A review the run would make: the reviewer's range, like a step's."""
    print(f"  {f.step_id:<32} {'review':<14} {span(f.low_usd, f.high_usd)}")
    print(f"      {describe(f)}")
    for note in f.assumptions if verbosity >= 2 else ():
        print(f"      - {note}")


def _against(check: BudgetCheck) -> str:
    return (
        f"against {check.budget.label} budget {money(check.budget.limit)} "
        f"({money(check.left)} left): {check.verdict}"
    )


def to_json(data: dict[str, Any]) -> str:
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
    report = {
        "bundle_id": data["bundle_id"],
        "low_usd": round(data["low_usd"], 6),
        "high_usd": round(data["high_usd"], 6),
        "cannot_run_steps": sum(1 for f in data["forecasts"].values() if f.cannot_run),
        "steps": steps,
        "budgets": [c.to_dict() for c in data["budgets"]],
    }
    return json.dumps(report, indent=2)


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


def dry_run(bundle: Bundle, root: Path, budgets: list[str] | None, skip_ws: list[str] | None,
            verbosity: int | None = None,
            cache: tuple[str, str | None] | None = None) -> int:  # fmt: skip
    """`uet run FILE --dry-run`: nothing runs; what would, and what it would cost.
    `cache` is `uet run`'s (--cache flag, --cache-store URL)."""
    from uet_doit.run.budget import apply_overrides, parse_budget_args

    bundle = apply_overrides(bundle, parse_budget_args(budgets))
    data = forecast_data(bundle, root, tuple(skip_ws or ()))
    # the step cache (observe/why.py): hits leave the forecast; their savings are listed
    from uet_doit.observe.why import apply_cache_to_forecast

    cached = apply_cache_to_forecast(bundle, root, data, *(cache or ("default", None)))
    print_forecast(bundle, data, verbosity if verbosity is not None else 1)
    for line in cached:
        print(line)
    return 0
