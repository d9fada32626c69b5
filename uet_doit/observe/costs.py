"""`uet cost`: spend against every budget, by step, workstream or tool; `uet cost reset`;
`uet cost --forecast BUNDLE`: what a bundle may cost before it runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from uet_doit.bundle.model import Bundle
from uet_doit.errors import UetError, UsageError
from uet_doit.run.budget import Budget, CostLedger, budgets_for
from uet_doit.state.store import RunStore
from uet_doit.state.unknown_cost import cost_with_unknown


def _run_bundle(store: RunStore, run_id: str) -> Bundle | None:
    """The bundle a run ran, for its budgets; None when the file is gone or broken now."""
    from uet_doit.bundle.loader import load_bundle
    from uet_doit.tools.routing import default_known_tools

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


def _cost_cell(row: dict[str, Any]) -> str:
    """`$  0.0123`, or `unknown` (with the known part) when an attempt could not be priced."""
    if not row["unknown_cost_attempts"]:
        return f"${row['known_cost_usd']:>9.4f}"
    known = row["known_cost_usd"]
    return f"unknown (${known:.4f} known)" if known else "unknown"


def _forecast(args: argparse.Namespace) -> int:
    """`uet cost --forecast BUNDLE`: what the steps that would run may cost, per budget."""
    from uet_doit.bundle.loader import load_bundle
    from uet_doit.observe.dry_run import forecast_data, print_forecast, to_json
    from uet_doit.tools.routing import default_known_tools

    if args.run_id:
        msg = f"`uet cost --forecast` takes no RUN_ID (got {args.run_id!r})"
        raise UsageError(msg, "use `uet cost --forecast BUNDLE` or `uet cost RUN_ID`")
    root = Path.cwd()
    bundle = load_bundle(
        Path(args.forecast), root, known_tools=default_known_tools(), remember=False
    )
    data = forecast_data(bundle, root)
    if args.json:
        print(to_json(data))
    else:
        print_forecast(bundle, data)
    return 0


def _prices(args: argparse.Namespace) -> int:
    """`uet cost --prices`: each model's price and the source that gave it."""
    from uet_doit.observe.price_list import price_rows, print_prices

    root = Path.cwd()
    store = RunStore(root)
    rows = price_rows(root, store if store.exists() else None)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_prices(rows)
    return 0


def _cmd_cost(args: argparse.Namespace) -> int:
    if args.forecast:
        return _forecast(args)
    if args.prices:
        return _prices(args)
    store = RunStore(Path.cwd())
    if args.run_id == "reset":
        return _reset(store, args)
    run_id = args.run_id or store.latest_run_id()
    if run_id is None:
        raise UsageError(f"no runs recorded in {store.path}", "start one with `uet run BUNDLE`")
    row = store.run(run_id)
    if row is None:
        raise UsageError(f"no run {run_id!r} in {store.path}", "list runs with `uet runs`")
    bundle_id = row.bundle_id
    bundle = _run_bundle(store, run_id)
    run_rows = spend_rows(store, run_id, bundle_id, args.by)
    unknown_steps = sum(
        1 for r in spend_rows(store, run_id, bundle_id, "step") if r["unknown_cost_attempts"]
    )
    report = {
        "run_id": run_id,
        "bundle_id": bundle_id,
        # the known costs; `unknown_cost_steps` steps of unknown cost come on top
        "run_cost_usd": round(sum(r["known_cost_usd"] for r in run_rows), 6),
        "unknown_cost_steps": unknown_steps,
        "by": args.by,
        "run": run_rows,
        "all_runs": spend_rows(store, None, bundle_id, args.by),
        "budgets": budget_rows(store, bundle) if bundle else [],
    }
    cached, saved = store.cache.saved_by_cache(bundle_id, run_id)
    report["cached_attempts"], report["saved_usd"] = cached, round(saved, 6)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"run {run_id} ({bundle_id}): {cost_with_unknown(report['run_cost_usd'], unknown_steps)}")
    if cached:
        print(f"saved by the step cache: ${saved:.4f} ({cached} step(s) restored, not re-run)")
    print(f"\nspend by {args.by} (this run | all runs since the last reset)")
    totals = {r[args.by]: r for r in report["all_runs"]}
    for r in report["run"]:
        total = totals.get(r[args.by], r)
        print(
            f"  {r[args.by]!s:<32} {_cost_cell(r)} | {_cost_cell(total)}"
            f"  {r['attempts']} attempt(s)"
            + (f"  [{r['cost_source']}]" if r["cost_source"] else "")
        )
    if report["budgets"]:
        print("\nbudgets")
        for b in report["budgets"]:
            left = (
                f"OVERSPENT by ${b['overspent_usd']:.4f}"
                if b["overspent_usd"] > 0
                else f"remaining ${b['remaining_usd']:.4f}"
            )
            print(
                f"  {b['budget']:<32} spent ${b['spent_usd']:.4f} of ${b['limit_usd']:.4f}"
                f"  {left}  ({b['policy']})"
            )
            if b["unknown_cost_attempts"]:
                print(
                    f"    includes ${b['unknown_counted_usd']:.4f} for "
                    f"{b['unknown_cost_attempts']} attempt(s) of unknown cost, counted at their "
                    "forecast's high end (or the step's estimated_cost_usd)"
                )
    elif bundle is None:
        print("\n(budgets unknown: the run's bundle file cannot be read now)")
    return 0


def _reset(store: RunStore, args: argparse.Namespace) -> int:
    bundle_ids = [args.bundle_id] if args.bundle_id else store.bundle_ids()
    ledger = CostLedger(store)
    for bundle_id in bundle_ids:
        ledger.reset(bundle_id)
        print(f"spend of {bundle_id} reset: budgets count from now on (history is kept)")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "cost", help="spend against every budget (`uet cost reset` starts budgets afresh)"
    )
    p.add_argument("run_id", nargs="?", metavar="RUN_ID|reset")
    p.add_argument("--by", choices=("step", "workstream", "tool"), default="workstream")
    p.add_argument("--json", action="store_true")
    p.add_argument("--bundle-id", help="with reset: only this bundle's spend")
    p.add_argument(
        "--forecast",
        metavar="BUNDLE",
        help="forecast what the bundle's steps that would run may cost, against every budget",
    )
    p.add_argument(
        "--prices",
        action="store_true",
        help="each model's price per Mtok and which source priced it (router_config.json, "
        "litellm's map, uet's table), or that it has none",
    )
    p.set_defaults(handler=_cmd_cost)
