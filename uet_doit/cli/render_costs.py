"""The texts of `uet cost` (spend, `--prices`, `--forecast`) and of `uet run --dry-run`:
the library returns the figures (observe.costs, observe.price_list, observe.dry_run), these
functions turn them into the lines a person reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from uet_doit.state.unknown_cost import cost_with_unknown

if TYPE_CHECKING:
    from uet_doit.bundle.model import Bundle
    from uet_doit.observe.costs import CostReport
    from uet_doit.observe.why import CacheForecast
    from uet_doit.run.forecast.budgets import BudgetCheck
    from uet_doit.run.forecast.estimate import StepForecast


def _cost_cell(row: dict[str, Any]) -> str:
    """`$  0.0123`, or `unknown` (with the known part) when an attempt could not be priced."""
    if not row["unknown_cost_attempts"]:
        return f"${row['known_cost_usd']:>9.4f}"
    known = row["known_cost_usd"]
    return f"unknown (${known:.4f} known)" if known else "unknown"


def cost_report(report: CostReport) -> str:
    """`uet cost`: the run's total, its spend by step, workstream or tool, its budgets."""
    data, by = report.data, report.data["by"]
    total_cost = cost_with_unknown(data["run_cost_usd"], data["unknown_cost_steps"])
    lines = [f"run {data['run_id']} ({data['bundle_id']}): {total_cost}"]
    if data["cached_attempts"]:
        lines.append(
            f"saved by the step cache: ${report.saved_usd:.4f} "
            f"({data['cached_attempts']} step(s) restored, not re-run)"
        )
    lines.append(f"\nspend by {by} (this run | all runs since the last reset)")
    totals = {r[by]: r for r in data["all_runs"]}
    for r in data["run"]:
        total = totals.get(r[by], r)
        lines.append(
            f"  {r[by]!s:<32} {_cost_cell(r)} | {_cost_cell(total)}"
            f"  {r['attempts']} attempt(s)"
            + (f"  [{r['cost_source']}]" if r["cost_source"] else "")
        )
    if data["budgets"]:
        lines.append("\nbudgets")
        for b in data["budgets"]:
            left = (
                f"OVERSPENT by ${b['overspent_usd']:.4f}"
                if b["overspent_usd"] > 0
                else f"remaining ${b['remaining_usd']:.4f}"
            )
            lines.append(
                f"  {b['budget']:<32} spent ${b['spent_usd']:.4f} of ${b['limit_usd']:.4f}"
                f"  {left}  ({b['policy']})"
            )
            if b["unknown_cost_attempts"]:
                lines.append(
                    f"    includes ${b['unknown_counted_usd']:.4f} for "
                    f"{b['unknown_cost_attempts']} attempt(s) of unknown cost, counted at their "
                    "forecast's high end (or the step's estimated_cost_usd)"
                )
    elif not report.budgets_known:
        lines.append("\n(budgets unknown: the run's bundle file cannot be read now)")
    return "\n".join(lines)


def spend_reset(bundle_ids: list[str]) -> str:
    return "\n".join(
        f"spend of {bundle_id} reset: budgets count from now on (history is kept)"
        for bundle_id in bundle_ids
    )


def prices(rows: list[dict[str, Any]]) -> str:
    """`uet cost --prices`: model, price in/out, source (or unknown), where it was seen."""
    lines = [
        "price chain: router_config.json `prices`, litellm's map (when installed), uet's table"
    ]
    width = max([len(r["model"]) for r in rows] + [5])
    for r in rows:
        if r["source"] is None:
            price = "unknown (no price)"
        else:
            price = f"${r['input_per_mtok']:g}/${r['output_per_mtok']:g} per Mtok in/out"
        alias = f" (as {r['looked_up_as']})" if r["looked_up_as"] and r["source"] else ""
        lines.append(f"  {r['model']:<{width}}  {price}  {r['source'] or ''}{alias}")
        lines.append(f"  {'':<{width}}  seen: {'; '.join(r['seen'])}")
    unknown = [r["model"] for r in rows if r["source"] is None]
    if unknown:
        lines.append(
            f"no price for {', '.join(unknown)}: add them under `prices` in router_config.json"
        )
    return "\n".join(lines)


def forecast(bundle: Bundle, data: dict[str, Any], verbosity: int = 1) -> list[str]:
    """`uet cost --forecast` and `--dry-run`: each workstream's steps with their state and
    range, each budget against the forecast under it, then the totals and what is flagged."""
    from uet_doit.observe.dry_run import describe, money, span  # lazy: start-up time
    from uet_doit.run.forecast.estimate import total  # lazy: start-up time

    states: dict[str, str] = data["states"]
    forecasts: dict[str, StepForecast] = data["forecasts"]
    checks = {c.budget.label: c for c in data["budgets"]}
    lines: list[str] = []
    for ws in bundle.workstreams:
        serial = "" if ws.parallel_ok else " (parallel_ok: false: one step at a time, in order)"
        background = " [background]" if ws.priority == "background" else ""
        lines.append(f"{ws.ws_id}: {ws.title}{background}{serial}")
        for step in ws.steps:
            f = forecasts.get(step.step_id)
            cost = span(f.low_usd, f.high_usd) if f else ""
            if f and f.cannot_run:
                cost = "CANNOT RUN (no tool)"
            unpriced = " (no price: not counted)" if f and not f.priced else ""
            alone = " (parallel_ok: false: runs alone)" if step.parallel_ok is False else ""
            lines.append(f"  {step.step_id:<32} {states[step.step_id]:<14} {cost}{unpriced}{alone}")
            if f is not None:
                lines.append(f"      {describe(f)}")
                lines += [f"      - {note}" for note in f.assumptions if verbosity >= 2]
            check = checks.get(f"step {step.step_id}")
            if check is not None and f is not None:
                lines.append(f"      {_against(check)}")
        own = {s.step_id for s in ws.steps}
        reviews = [f for f in forecasts.values() if f.ws_id == ws.ws_id and f.step_id not in own]
        for f in reviews:
            lines += _review(f, verbosity)
        ws_items = [forecasts[s.step_id] for s in ws.steps if s.step_id in forecasts] + reviews
        low, high = total(ws_items)
        check = checks.get(f"workstream {ws.ws_id}")
        tail = f" {_against(check)}" if check else ""
        lines.append(f"  forecast {span(low, high)}{tail}")
    blocked = [f for f in forecasts.values() if f.cannot_run]
    mine = {s.step_id for _, s in bundle.steps()}
    known = {ws.ws_id for ws in bundle.workstreams}
    for f in forecasts.values():
        if f.step_id not in mine and f.ws_id not in known:  # the bundle's own criteria
            lines += _review(f, verbosity)
    n = len([f for f in forecasts if f in mine]) - len(blocked)
    check = checks.get(f"bundle {bundle.bundle_id}")
    tail = f" {_against(check)}" if check else " (no bundle budget)"
    asked = len(forecasts) - len([f for f in forecasts if f in mine])
    reviews_note = f" and {asked} review(s)" if asked else ""
    lines.append(
        f"{n} step(s){reviews_note} would run; forecast "
        f"{span(data['low_usd'], data['high_usd'])}{tail}"
    )
    if blocked:
        lines.append(f"  ! {len(blocked)} step(s) cannot run: {blocked[0].cannot_run}")
    flagged = [c for c in data["budgets"] if c.verdict.startswith(("EXCEEDED", "HIGH END"))]
    lines += [
        f"  ! {c.budget.label}: forecast {span(c.low, c.high)} > {money(c.left)} left "
        f"({c.budget.policy}): steps may be paused; raise it with --budget"
        for c in flagged
    ]
    no_price = sorted({f.model or "?" for f in forecasts.values() if not f.priced})
    if no_price:
        names = ", ".join(no_price)
        lines.append(f"  no price for {names}: add them under `prices` in router_config.json")
    return lines


def _review(f: StepForecast, verbosity: int) -> list[str]:
    """A review the run would make: the reviewer's range, like a step's."""
    from uet_doit.observe.dry_run import describe, span  # lazy: start-up time

    lines = [f"  {f.step_id:<32} {'review':<14} {span(f.low_usd, f.high_usd)}"]
    lines.append(f"      {describe(f)}")
    return lines + [f"      - {note}" for note in f.assumptions if verbosity >= 2]


def _against(check: BudgetCheck) -> str:
    from uet_doit.observe.dry_run import money  # lazy: start-up time

    return (
        f"against {check.budget.label} budget {money(check.budget.limit)} "
        f"({money(check.left)} left): {check.verdict}"
    )


def cache_forecast(cached: CacheForecast) -> list[str]:
    """`--dry-run`'s step cache lines: hits and what they save, then every step looked up."""
    if cached.warning is not None:
        return [f"warning: {cached.warning}"]
    if not cached.looked:
        return []
    hits = cached.hits
    saved = sum(v.saves_usd for v in hits.values())
    misses = len(cached.looked) - len(hits)
    lines = [f"step cache: {len(hits)} hit(s) saving ${saved:.4f}, {misses} miss(es)"]
    return lines + [f"  {step_id:<32} {v.note}" for step_id, v in cached.looked.items()]
