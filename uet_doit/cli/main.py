"""`uet`: command line -> calls into the core -> exit code. Nothing else lives here."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from uet_doit.errors import EXIT_INTERRUPTED, EXIT_OK, UetError


def _cmd_validate(args: argparse.Namespace) -> int:
    """Every problem of every file (exit 3); inputs nothing provides are warnings (exit 0)."""
    from uet_doit.bundle.checks import missing_inputs
    from uet_doit.bundle.loader import load_bundle
    from uet_doit.errors import BundleError

    failures: list[BundleError] = []
    root = Path.cwd()
    for name in args.files:
        path = Path(name)
        try:
            bundle = load_bundle(path, root)
        except BundleError as exc:
            failures.append(exc)
            continue
        steps = len(bundle.steps())
        print(
            f"{path}: ok ({bundle.bundle_id}: {len(bundle.workstreams)} workstreams, {steps} steps)"
        )
        missing = missing_inputs(bundle, root)
        for step_id, input_path in missing[:10]:
            print(
                f"{path}: warning: {input_path!r} (input of {step_id}) does not exist "
                "and no step creates it",
                file=sys.stderr,
            )
        if missing:
            more = f"{len(missing) - 10} more such inputs; " if len(missing) > 10 else ""
            print(
                f"TIP: {more}a step fails before its tool starts when an input is missing: "
                "create the file, or list it in the `create_files` of the step that makes it",
                file=sys.stderr,
            )
    for failure in failures:
        print(failure.render(), file=sys.stderr)
    return 3 if failures else 0


def _cmd_run(args: argparse.Namespace) -> int:
    from uet_doit.bundle.loader import load_bundle
    from uet_doit.run.budget import parse_budget_args
    from uet_doit.run.runner import RunOptions, execute

    root = Path.cwd()
    path = Path(args.bundle)
    bundle = load_bundle(path, root, remember=not args.dry_run)
    if args.dry_run:
        from uet_doit.observe.dry_run import dry_run

        cache = (args.cache, args.cache_store)
        return dry_run(bundle, root, args.budget, args.skip_workstream, args.verbosity, cache)
    opts = RunOptions(
        jobs=args.jobs,
        parallel_type=args.parallel_type,
        keep_going=args.keep_going,
        resume=args.resume,
        skip_workstreams=args.skip_workstream or (),
        tasks=args.tasks,
        reporter=args.reporter,
        verbosity=args.verbosity,
        budgets=parse_budget_args(args.budget),
        argv=sys.argv,
        cache=args.cache,
        cache_store=args.cache_store,
        into=args.into,
    )
    from uet_doit.tools.redact import short_secret_warning

    if warning := short_secret_warning(os.environ):  # once per run, before any tool starts
        print(warning, file=sys.stderr)
    return execute(bundle, path, root, opts)


def _cmd_list(args: argparse.Namespace) -> int:
    from uet_doit.bundle.loader import load_bundle
    from uet_doit.bundle.model import effective_tool
    from uet_doit.run.doit_bridge import task_status

    root = Path.cwd()
    bundle = load_bundle(Path(args.bundle), root)
    status = task_status(bundle, root)
    base = bundle.task_basename
    rows = []
    for ws, step in bundle.steps():
        st = {"up-to-date": "up to date", "run": "to run", "error": "missing input"}[
            status.get(step.step_id, "run")
        ]
        rows.append(
            {
                "task": f"{base}:{step.step_id}",
                "step_id": step.step_id,
                "ws_id": ws.ws_id,
                "tool": effective_tool(bundle, ws, step),
                "status": st,
                "name": step.title,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max((len(r["task"]) for r in rows), default=10)
    for r in rows:
        print(
            f"{r['task']:<{width}}  {r['ws_id']:<20} {r['tool']:<8} {r['status']:<12} {r['name']}"
        )
    return EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from uet_doit.bundle.schema import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from uet_doit.observe.status import run_status
    from uet_doit.state.store import RunStore

    if args.watch and not args.json:
        from uet_doit.observe.monitor import watch_status

        watch_status(args.run_id, args.interval)
        return EXIT_OK
    store = RunStore(Path.cwd())
    while True:
        st = run_status(store, args.run_id)
        if args.json:
            print(json.dumps(st.to_dict(), indent=2))
        else:
            _print_status(st)
        if not args.watch or st.status != "running":
            return EXIT_OK
        time.sleep(args.interval)
        print()


def _print_status(st: object) -> None:
    from uet_doit.observe.status import RunStatus

    assert isinstance(st, RunStatus)
    print(
        f"run {st.run_id} ({st.bundle_id}): {st.status}" + (f" - {st.reason}" if st.reason else "")
    )
    ws_seen: str | None = None
    marks = {
        "succeeded": "done",
        "up_to_date": "up to date",
        "running": "running",
        "failed": "FAILED",
        "skipped": "skipped",
        "pending": "waiting",
        "retrying": "retrying",
        "interrupted": "interrupted",
        "paused": "paused",
        "blocked": "blocked",
    }
    for s in st.steps:
        if s.ws_id != ws_seen:
            ws_seen = s.ws_id
            print(f"{s.ws_id}")
        extra = f" attempts={s.attempts}" if s.attempts > 1 else ""
        if s.cost_usd:
            extra += f" ${s.cost_usd:.4f}"
        if s.cached:
            extra += f" (from the cache, saved ${s.saved_usd:.4f})"
        if s.last_error:
            extra += f" - {s.last_error.splitlines()[0][:100]}"
        print(f"  {marks.get(s.status, s.status):<11} {s.step_id}{extra}")
    for g in st.gates:
        print(
            f"gate {g.get('gate_type')} of {g.get('scope')}: {g.get('outcome')}"
            + (
                f" - {str(g.get('message', '')).splitlines()[0][:100]}"
                if g.get("outcome") != "passed"
                else ""
            )
        )
    marks = {"met": "[x]", "unmet": "[!]", "to_confirm": "[ ]", "not_evaluated": "[-]"}
    for c in st.criteria:
        print(
            f"{marks.get(c['state'], '[?]')} {c['scope']}: {c['description']}"
            + (" (to confirm)" if c["state"] == "to_confirm" else "")
        )
    eta = f" | ETA: {st.eta_seconds:.0f}s" if st.eta_seconds is not None else ""

    print(
        f"Progress: {st.progress_pct:.0f}% ({st.completed_count}/{st.total_count}) | "
        f"Cost: ${st.total_cost_usd:.2f}{eta}"
        + (f" | Saved by the cache: ${st.saved_usd:.2f}" if st.cached_count else "")
    )


def _cmd_runs(args: argparse.Namespace) -> int:
    from uet_doit.state.store import RunStore

    store = RunStore(Path.cwd())
    store.mark_dead_runs()
    for r in store.runs(args.limit):
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started))
        print(f"{r.run_id:<44} {r.status:<12} {started}  ${r.cost:.4f}")
    return EXIT_OK


def _cmd_breakers(args: argparse.Namespace) -> int:
    from uet_doit.run.breakers import BreakerBook
    from uet_doit.state.store import RunStore

    book = BreakerBook(RunStore(Path.cwd()))
    if args.action == "reset":
        n = book.reset(args.tool)
        print(f"closed {n} breaker(s)")
        return EXIT_OK
    rows = book.all()
    if not rows:
        print("no breakers recorded (all closed)")
    for r in rows:
        opened = time.strftime("%H:%M:%S", time.localtime(r.opened_at)) if r.opened_at else "-"
        print(f"{r.tool:<16} {r.state:<10} failures={r.failures} opened={opened}")
    return EXIT_OK


#: subcommands defined by their own modules (`register(subparsers)`), imported only when used
PLUGIN_COMMANDS = {
    "route": "uet_doit.tools.routing",
    "convert": "uet_doit.plans.convert",
    "import": "uet_doit.plans.legacy_import",
    "bootstrap": "uet_doit.plans.bootstrap",
    "cost": "uet_doit.observe.costs",
    "report": "uet_doit.observe.report",
    "graph": "uet_doit.observe.graph_export",
    "cache": "uet_doit.cache.commands",
    "why": "uet_doit.cache.why",
}
PLUGIN_COMMANDS.update(
    dict.fromkeys(("log", "show", "revert", "workspaces", "clean"), "uet_doit.cli.provenance")
)


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 3 (doit's 'user error'), not argparse's 2 (our 'runtime error')."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(3, f"{self.prog}: error: {message}\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="uet", description="Run workstream bundles as incremental, parallel doit tasks."
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check bundles; exit 3 listing every problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(handler=_cmd_validate)

    p = sub.add_parser("run", help="run a bundle's steps that are not up to date")
    p.add_argument("bundle", metavar="FILE")
    p.add_argument("tasks", nargs="*", metavar="TASK", help="steps or workstreams to run")
    p.add_argument("-n", "--jobs", type=int, default=1, help="parallel steps (default 1)")
    p.add_argument("-P", "--parallel-type", choices=("process", "thread"), default="process")
    p.add_argument(
        "-c",
        "--continue",
        dest="keep_going",
        action="store_true",
        help="keep running independent steps after a failure",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="show what would run and cost; run nothing"
    )
    p.add_argument(
        "--budget",
        action="append",
        metavar="SCOPE=USD",
        help="override a budget: bundle=20, WS-ID=0.50 or STEP-ID=1 (repeatable)",
    )
    p.add_argument("--resume", metavar="RUN_ID", help="continue that run under its id")
    p.add_argument(
        "--skip-workstream",
        action="append",
        metavar="WS",
        help="skip a workstream and what depends on it (repeatable)",
    )
    p.add_argument(
        "--reporter",
        choices=("live", "plain", "json"),
        default=None,
        help="live tree on a terminal (default there), plain lines, or JSON lines",
    )
    p.add_argument("-v", "--verbosity", type=int, choices=(0, 1, 2), default=None)
    p.add_argument(
        "--cache",
        dest="cache",
        action="store_const",
        const="on",
        default="default",
        help="use the step cache for every step the bundle does not exclude",
    )
    p.add_argument(
        "--no-cache", dest="cache", action="store_const", const="off", help="no step cache"
    )
    p.add_argument(
        "--cache-store",
        metavar="URL",
        help="shared step cache: a folder, s3://, gs://, http(s):// (else $UET_CACHE_STORE)",
    )
    p.add_argument("--into", metavar="BRANCH", help="land isolated steps on this branch")
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser("list", help="steps with workstream, tool and up-to-date state")
    p.add_argument("bundle", metavar="FILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_list)

    p = sub.add_parser("schema", help="print the bundle JSON Schema")
    p.set_defaults(handler=_cmd_schema)

    p = sub.add_parser("status", help="a run's state (latest by default)")
    p.add_argument("run_id", nargs="?")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="refresh until the run ends")
    p.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)
    p.set_defaults(handler=_cmd_status)

    p = sub.add_parser("runs", help="list recorded runs")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(handler=_cmd_runs)

    p = sub.add_parser("breakers", help="show per-tool circuit breakers, or reset them")
    p.add_argument("action", nargs="?", choices=("show", "reset"), default="show")
    p.add_argument("tool", nargs="?")
    p.set_defaults(handler=_cmd_breakers)

    words = [a for a in (argv or ()) if not a.startswith("-")]
    core = {"validate", "run", "list", "schema", "status", "runs", "breakers"}
    wanted: list[str]
    if words and words[0] in PLUGIN_COMMANDS:
        wanted = [PLUGIN_COMMANDS[words[0]]]
    elif (words and words[0] in core) or (not words and "--version" in (argv or ())):
        wanted = []
    else:  # help, or a typo: list them all
        wanted = list(dict.fromkeys(PLUGIN_COMMANDS.values()))
    for module_name in wanted:
        importlib.import_module(module_name).register(sub)
    return parser


def _version() -> str:
    from uet_doit import __version__

    return f"uet-doit {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 3
    try:
        code: int = handler(args)
    except UetError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
