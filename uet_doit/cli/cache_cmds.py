"""`uet cache stats | prune --older-than 30d | verify` (cache.commands looks after the
store) and `uet why STEP` (cache.why explains the step)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from uet_doit.cli import render
from uet_doit.cli.parsing import Subcommands
from uet_doit.errors import EXIT_FAILED, EXIT_OK, UsageError


def register(sub: Subcommands) -> None:
    p = sub.add_parser("cache", help="step cache store: stats, prune, verify")
    p.add_argument(
        "action",
        choices=("stats", "prune", "verify"),
        help="stats (size and hits), prune (old entries) or verify (damaged entries)",
    )
    p.add_argument("--older-than", metavar="AGE", help="prune: e.g. 30d, 12h, 2w")
    p.add_argument("--repair", action="store_true", help="verify: remove damaged entries")
    p.add_argument("--store", metavar="URL", help="default: as `uet run` (else .uet/cache)")
    p.add_argument("--local", action="store_true", help="the project's .uet/cache only")
    p.add_argument("--json", action="store_true", help="print the result as JSON, for scripts")
    p.set_defaults(handler=cache)

    p = sub.add_parser("why", help="why a step would run or not (doit and the cache)")
    p.add_argument("step", metavar="STEP", help="a step id of the bundle")
    p.add_argument("-b", "--bundle", metavar="FILE", help="default: the latest run's bundle")
    p.add_argument("--cache-store", metavar="URL", help="as `uet run --cache-store`")
    p.add_argument("--cache", action="store_true", help="as `uet run --cache`")
    p.add_argument("--json", action="store_true", help="print the reasons as JSON, for scripts")
    p.set_defaults(handler=why)


def cache(args: argparse.Namespace) -> int:
    """Exit 1 when `verify` finds damaged entries it was not asked to repair."""
    # lazy: start-up time
    from uet_doit.cache.commands import open_store, parse_age, project_stats, prune, verify

    root = Path.cwd()
    store = open_store(root, args.store, args.local)
    if args.action == "stats":
        data, saved = project_stats(store, root)
        print(json.dumps(data, indent=2) if args.json else render.cache_stats(data, saved))
        return EXIT_OK
    if args.action == "prune":
        if args.older_than is None:
            raise UsageError("uet cache prune needs --older-than", "e.g. --older-than 30d")
        pruned = prune(store, parse_age(args.older_than))
        print(json.dumps(pruned.__dict__, indent=2) if args.json else render.cache_pruned(pruned))
        return EXIT_OK
    checked = verify(store, repair=args.repair)
    if args.json:
        print(json.dumps(checked.__dict__, indent=2))
    else:
        print(render.cache_verified(checked, str(store), args.repair))
    return EXIT_FAILED if checked.damaged and not args.repair else EXIT_OK


def why(args: argparse.Namespace) -> int:
    from uet_doit.observe.why import why as explain_step  # lazy: start-up time

    report = explain_step(Path.cwd(), args.step, args.bundle, args.cache_store, args.cache)
    print(json.dumps(report, indent=2) if args.json else report["verdict"])
    return EXIT_OK
