"""`uet run --dry-run` and `uet cost --forecast`: what would run, and its cost forecast
per step, workstream and bundle against every budget (flagging those the high end breaks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uet_doit.bundle.model import Bundle
from uet_doit.observe.why import apply_cache_to_forecast
from uet_doit.run.budget import apply_overrides, parse_budget_args
from uet_doit.run.doit.loader import task_status
from uet_doit.run.doit.task_names import skipped_steps
from uet_doit.run.forecast.budgets import budget_checks
from uet_doit.run.forecast.estimate import StepForecast, total
from uet_doit.run.forecast.inputs import bundle_forecasts
from uet_doit.run.forecast.reviews import review_forecasts
from uet_doit.state.store import RunStore

if TYPE_CHECKING:
    from uet_doit.observe.why import CacheForecast

_VERDICTS = {"up-to-date": "up to date", "error": "missing input"}


def verdicts(bundle: Bundle, root: Path, skip_ws: tuple[str, ...]) -> dict[str, str]:
    """step_id -> would run | up to date | missing input | skipped."""
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
    bundle = apply_overrides(bundle, parse_budget_args(budgets))
    data = forecast_data(bundle, root, tuple(skip_ws or ()))
    # the step cache (observe/why.py): hits leave the forecast; their savings are listed
    cached = apply_cache_to_forecast(bundle, root, data, *(cache or ("default", None)))
    return DryRun(bundle, data, cached)
