"""`uet cost`: spend against every budget, by step, workstream or tool; `uet cost reset`;
`uet cost --forecast BUNDLE`: what a bundle may cost before it runs; `uet cost --prices`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from uet_doit.cli import render_costs
from uet_doit.cli.parsing import Subcommands
from uet_doit.cli.state_cmds import RUN_ID_HELP
from uet_doit.errors import EXIT_OK, UsageError


def register(sub: Subcommands) -> None:
    p = sub.add_parser(
        "cost", help="spend against every budget (`uet cost reset` starts budgets afresh)"
    )
    p.add_argument(
        "run_id",
        nargs="?",
        metavar="RUN_ID|reset",
        help=f"{RUN_ID_HELP}; or `reset` to start budgets afresh (history is kept)",
    )
    p.add_argument(
        "--by",
        choices=("step", "workstream", "tool"),
        default="workstream",
        help="group spend by step, workstream (default) or tool",
    )
    p.add_argument(
        "--json", action="store_true", help="print the spend and budgets as JSON, for scripts"
    )
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
    p.set_defaults(handler=cost)


def cost(args: argparse.Namespace) -> int:
    from uet_doit.observe.costs import cost_report, reset_spend  # lazy: start-up time
    from uet_doit.state.store import RunStore  # lazy: start-up time

    if args.forecast:
        return _forecast(args)
    if args.prices:
        return _prices(args)
    store = RunStore(Path.cwd())
    if args.run_id == "reset":
        reset = reset_spend(store, args.bundle_id)
        if reset:
            print(render_costs.spend_reset(reset))
        return EXIT_OK
    report = cost_report(store, args.run_id, args.by)
    print(json.dumps(report.data, indent=2) if args.json else render_costs.cost_report(report))
    return EXIT_OK


def _forecast(args: argparse.Namespace) -> int:
    """`uet cost --forecast BUNDLE`: what the steps that would run may cost, per budget."""
    from uet_doit.bundle.loader import load_bundle  # lazy: start-up time
    from uet_doit.observe.dry_run import forecast_data, forecast_report  # lazy: start-up time
    from uet_doit.tools.routing import default_known_tools  # lazy: start-up time

    if args.run_id:
        msg = f"`uet cost --forecast` takes no RUN_ID (got {args.run_id!r})"
        raise UsageError(msg, "use `uet cost --forecast BUNDLE` or `uet cost RUN_ID`")
    root = Path.cwd()
    bundle = load_bundle(
        Path(args.forecast), root, known_tools=default_known_tools(), remember=False
    )
    data = forecast_data(bundle, root)
    if args.json:
        print(json.dumps(forecast_report(data), indent=2))
    else:
        print("\n".join(render_costs.forecast(bundle, data)))
    return EXIT_OK


def _prices(args: argparse.Namespace) -> int:
    """`uet cost --prices`: each model's price and the source that gave it."""
    from uet_doit.observe.price_list import price_rows  # lazy: start-up time
    from uet_doit.state.store import RunStore  # lazy: start-up time

    root = Path.cwd()
    store = RunStore(root)
    rows = price_rows(root, store if store.exists() else None)
    print(json.dumps(rows, indent=2) if args.json else render_costs.prices(rows))
    return EXIT_OK
