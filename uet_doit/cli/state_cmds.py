"""Commands that read what runs recorded: status, runs, breakers, report (cost: cost_cmds)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import suppress
from pathlib import Path

from uet_doit.cli import render
from uet_doit.cli.parsing import Subcommands, add_command
from uet_doit.errors import EXIT_OK, UsageError

RUN_ID_HELP = "a run id as `uet runs` lists it (default: the latest run)"


def register(sub: Subcommands) -> None:
    p = add_command(sub, "status", "a run's state (latest by default)")
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help=RUN_ID_HELP)
    p.add_argument("--json", action="store_true", help="print the status as JSON, for scripts")
    p.add_argument("--watch", action="store_true", help="refresh until the run ends")
    p.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="with --watch: seconds between refreshes (default 2)",
    )
    p.set_defaults(handler=status)

    p = add_command(sub, "runs", "list recorded runs, newest first")
    p.add_argument(
        "--limit", type=int, default=20, help="how many runs to list at most (default 20)"
    )
    p.set_defaults(handler=runs)

    p = add_command(sub, "breakers", "show per-tool circuit breakers, or reset them")
    p.add_argument(
        "action",
        nargs="?",
        choices=("show", "reset"),
        default="show",
        help="show the breakers (default) or reset (close) them",
    )
    p.add_argument("tool", nargs="?", help="with reset: only this tool's breaker (default: all)")
    p.set_defaults(handler=breakers)

    p = add_command(sub, "report", "write a self-contained HTML report of a run")
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help=RUN_ID_HELP)
    p.add_argument(
        "-o", "--output", metavar="FILE", help="where to write it (default: report-RUN_ID.html)"
    )
    p.set_defaults(handler=report)

    p = add_command(sub, "doctor", "check the project's run store and doit state; change nothing")
    p.set_defaults(handler=doctor)


def status(args: argparse.Namespace) -> int:
    from uet_doit.observe.status import run_status  # lazy: start-up time
    from uet_doit.state.store import RunStore  # lazy: start-up time

    if args.watch:
        return _watch(args)
    store = RunStore(Path.cwd())
    if not store.path.exists():  # asking must not create .uet/ in a project that never ran
        raise UsageError(f"no runs recorded in {store.path}", "start one with `uet run FILE`")
    st = run_status(store, args.run_id)
    print(json.dumps(st.to_dict(), indent=2) if args.json else render.run_status(st))
    return EXIT_OK


class _ReaderGone(Exception):
    """Nobody reads the watch any more (`uet status --watch | grep -m1 FAILED` matched)."""


def _watch(args: argparse.Namespace) -> int:
    """`--watch`: the live tree on a terminal; elsewhere one status (tree or JSON) per
    refresh, flushed as it comes, until the run ends or the reader goes away."""
    # lazy: start-up time
    from uet_doit.observe.monitor import RunMonitor, is_interactive, status_text, watch_status
    from uet_doit.observe.status import RunStatus  # lazy: start-up time

    if not args.json and is_interactive(sys.stdout):
        watch_status(args.run_id, args.interval, sys.stdout)
        return EXIT_OK
    monitor = RunMonitor.latest() if args.run_id is None else RunMonitor(args.run_id)

    def show(st: RunStatus) -> None:
        text = (
            json.dumps(st.to_dict(), indent=2) if args.json else status_text(st, monitor.bundle())
        )
        print(text, flush=True)
        if getattr(sys.stdout, "reader_gone", False):
            raise _ReaderGone

    with suppress(_ReaderGone):
        monitor.watch(args.interval, show)
    return EXIT_OK


def runs(args: argparse.Namespace) -> int:
    from uet_doit.state.store import RunStore  # lazy: start-up time

    store = RunStore(Path.cwd())
    rows = []
    if store.path.exists():  # listing must not create .uet/ in a project that never ran
        store.mark_dead_runs()
        rows = store.runs(args.limit)
    print(render.run_list(rows, str(store.path)))
    return EXIT_OK


def breakers(args: argparse.Namespace) -> int:
    from uet_doit.run.breakers import BreakerBook  # lazy: start-up time
    from uet_doit.state.store import RunStore  # lazy: start-up time

    store = RunStore(Path.cwd())
    book = BreakerBook(store) if store.path.exists() else None  # none recorded: no .uet/
    if args.action == "reset":
        print(f"closed {book.reset(args.tool) if book else 0} breaker(s)")
        return EXIT_OK
    print(render.breakers(book.all() if book else []))
    return EXIT_OK


def report(args: argparse.Namespace) -> int:
    from uet_doit.observe.report import write_report  # lazy: start-up time

    target = write_report(Path.cwd(), args.run_id, Path(args.output) if args.output else None)
    print(f"wrote {target}")
    return EXIT_OK


def doctor(args: argparse.Namespace) -> int:
    """Read-only checks of `.uet/state.db` and `.doit.db`, each with what to do."""
    from uet_doit.state.doctor import check_store  # lazy: start-up time
    from uet_doit.tools.sandbox import describe  # lazy: start-up time

    findings = check_store(Path.cwd())
    for finding in findings:
        print(render.finding_line(finding.ok, finding.what, finding.advice))
    print(describe())
    refused = Path.cwd() / ".uet" / "landing.json.refused"
    if refused.exists():
        print(
            render.finding_line(
                False,
                f"{refused} is a landing journal uet refused (it named a commit no uet "
                "landing recorded: a tool may have forged it)",
                "read it, then delete it; nothing of it was checked out",
            )
        )
        return 2
    return EXIT_OK if all(f.ok for f in findings) else 2
