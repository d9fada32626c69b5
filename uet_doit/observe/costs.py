"""What `uet cost` reports: a run's spend against every budget, by step, workstream or tool,
and the reset that starts budgets afresh (cli/cost_cmds.py renders them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uet_doit.bundle.loader import load_bundle
from uet_doit.bundle.model import Bundle
from uet_doit.errors import UetError, UsageError
from uet_doit.run.budget import Budget, CostLedger, budgets_for
from uet_doit.state.store import RunStore
from uet_doit.tools.routing import default_known_tools


def _run_bundle(store: RunStore, run_id: str) -> Bundle | None:
    """The bundle a run ran, for its budgets; None when the file is gone or broken now."""
    row = store.run(run_id)
    if row is None or not row.bundle_file:
        return None
    try:
        return load_bundle(Path(row.bundle_file), store.root, known_tools=default_known_tools())
    except UetError:
        return None


def budget_rows(store: RunStore, bundle: Bundle) -> list[dict[str, Any]]:
    """Every budget of a bundle with what is spent under it (since the last reset)."""
    ledger = CostLedger(store)
    seen: dict[str, Budget] = {}
    for ws, step in bundle.steps():
        for budget in budgets_for(bundle, ws, step):
            seen.setdefault(budget.label, budget)
    rows = []
    for budget in sorted(
        seen.values(), key=lambda b: ("bundle", "workstream", "step").index(b.scope)
    ):
        spent = ledger.spent(bundle.bundle_id, budget)
        unknown, charged = store.ledger.charged(bundle.bundle_id, budget.scope, budget.scope_id)
        rows.append(
            {
                "budget": budget.label,
                "limit_usd": budget.limit,
                "spent_usd": round(spent, 6),
                # attempts of unknown cost, counted in spent_usd at their forecast's high end
                "unknown_cost_attempts": unknown,
                "unknown_counted_usd": round(charged, 6),
                # never negative: spend beyond the limit is overspend, said as such
                "remaining_usd": round(max(0.0, budget.limit - spent), 6),
                "overspent_usd": round(max(0.0, spent - budget.limit), 6),
                "policy": budget.policy,
            }
        )
    return rows


def spend_rows(
    store: RunStore, run_id: str | None, bundle_id: str, by: str
) -> list[dict[str, Any]]:
    return [
        {
            by: r.key,
            "attempts": r.attempts,
            # null when an attempt's cost is unknown: never shown as $0
            "cost_usd": None if r.unknown else round(r.cost_usd, 6),
            "known_cost_usd": round(r.cost_usd, 6),
            "unknown_cost_attempts": r.unknown,
            "tokens_in": r.tokens_in,
            "tokens_out": r.tokens_out,
            "cost_source": r.sources,
        }
        for r in store.ledger.spend_by(bundle_id, by, run_id)
    ]


@dataclass(frozen=True)
class CostReport:
    """`uet cost RUN_ID`: the figures `--json` prints, and whether the run's bundle could be
    read for its budgets (an empty budget list says nothing about that on its own)."""

    data: dict[str, Any]
    budgets_known: bool
    saved_usd: float  # what the cache saved, unrounded (data has it to 6 places)


def cost_report(store: RunStore, run_id: str | None, by: str) -> CostReport:
    """A run's spend (default: the latest run) by step, workstream or tool, this run and all
    runs since the last reset, and every budget of its bundle; UsageError when there is none."""
    run_id = run_id or store.latest_run_id()
    if run_id is None:
        raise UsageError(f"no runs recorded in {store.path}", "start one with `uet run BUNDLE`")
    row = store.run(run_id)
    if row is None:
        raise UsageError(f"no run {run_id!r} in {store.path}", "list runs with `uet runs`")
    bundle_id = row.bundle_id
    bundle = _run_bundle(store, run_id)
    run_rows = spend_rows(store, run_id, bundle_id, by)
    unknown_steps = sum(
        1 for r in spend_rows(store, run_id, bundle_id, "step") if r["unknown_cost_attempts"]
    )
    report = {
        "run_id": run_id,
        "bundle_id": bundle_id,
        # the known costs; `unknown_cost_steps` steps of unknown cost come on top
        "run_cost_usd": round(sum(r["known_cost_usd"] for r in run_rows), 6),
        "unknown_cost_steps": unknown_steps,
        "by": by,
        "run": run_rows,
        "all_runs": spend_rows(store, None, bundle_id, by),
        "budgets": budget_rows(store, bundle) if bundle else [],
    }
    cached, saved = store.cache.saved_by_cache(bundle_id, run_id)
    report["cached_attempts"], report["saved_usd"] = cached, round(saved, 6)
    return CostReport(report, bundle is not None, saved)


def reset_spend(store: RunStore, bundle_id: str | None = None) -> list[str]:
    """Budgets of `bundle_id` (default: every bundle) count from now on; the ids reset.
    The spend history is kept."""
    bundle_ids = [bundle_id] if bundle_id else store.bundle_ids()
    ledger = CostLedger(store)
    for one in bundle_ids:
        ledger.reset(one)
    return bundle_ids
