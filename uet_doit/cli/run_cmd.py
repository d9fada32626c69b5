"""`uet run FILE [options] [TASK...]`: check the command line against the bundle, then run.

Everything a user can get wrong on the command line (a task that does not exist, a bad
budget, a skipped workstream's step) is a usage error found here, before a run is recorded:
no run id is spent and no resume hint is printed for a typo.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from uet_doit.cli import render_costs
from uet_doit.cli.parsing import EXIT_CODES, Subcommands, add_command, add_log_level
from uet_doit.errors import EXIT_OK, UsageError
from uet_doit.run.doit.task_names import check_tasks, skipped_steps, task_names

__all__ = ["check_tasks", "register", "run", "task_names"]  # task names: run/doit/task_names.py


def register(sub: Subcommands) -> None:
    p = add_command(
        sub,
        "run",
        "run a bundle's steps that are not up to date",
        "Options and TASK names may come in any order after FILE.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.intermixed = True
    add_log_level(p)
    p.add_argument("bundle", metavar="FILE", help="the workstream bundle (.json, .yaml or .yml)")
    p.add_argument(
        "tasks",
        nargs="*",
        default=[],
        metavar="TASK",
        help="only these steps, workstreams or gates and what they depend on (default: all); "
        "names as `uet list` shows them, with or without the `BASE:` prefix",
    )
    p.add_argument(
        "-n",
        "--jobs",
        type=_positive_int,
        default=1,
        help="steps in flight at once (default 1; at most the steps that can run, and 64)",
    )
    p.add_argument(
        "-P",
        "--parallel-type",
        choices=("process", "thread"),
        default="process",
        help="doit's runner type, accepted for compatibility: uet runs steps on threads "
        "either way (each tool is its own process)",
    )
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
        "--sync-plan",
        action="store_true",
        help="mark done, in the plan the bundle was converted from (uet convert), the items "
        "whose steps succeeded (also: bundle metadata sync_plan: true)",
    )
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
    p.add_argument(
        "-v",
        "--verbosity",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help="doit's task output: 0 hide it, 1 show stderr (default), 2 show all",
    )
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
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        default=None,
        help="where attempts run: here (default) or on Dask workers (pip install 'uet-doit[dask]')",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask: the scheduler to use (tcp://HOST:8786); default: a local cluster on 127.0.0.1",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="dask without --scheduler: worker processes of the local cluster (default 2)",
    )
    p.add_argument(
        "--no-shared-fs",
        action="store_true",
        help="dask: workers do not see the project; send it with git, apply their changes here",
    )
    p.add_argument(
        "--into",
        metavar="BRANCH",
        help="land isolated steps' commits on this branch (default: the checked-out one)",
    )
    p.set_defaults(handler=run)


#: the largest `-n` / `--workers` taken (uet runs at most 64 steps at once anyway): a count
#: past it is a typo, refused before anything is recorded
MAX_COUNT = 1_000_000


def _positive_int(text: str) -> int:
    """A whole number from 1 to MAX_COUNT (a longer one is refused unparsed)."""
    digits = text.strip()
    value = int(digits) if digits.isdigit() and len(digits) <= len(str(MAX_COUNT)) else 0
    if not 1 <= value <= MAX_COUNT:
        shown = text if len(text) <= 30 else text[:27] + "..."
        msg = f"expected a whole number from 1 to {MAX_COUNT}, got {shown!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def executor_choice(args: argparse.Namespace) -> str:
    """--scheduler, --workers and --no-shared-fs imply --executor dask; with `local` they
    are a mistake."""
    given = (
        ("--scheduler", args.scheduler),
        ("--workers", args.workers),
        ("--no-shared-fs", args.no_shared_fs),
    )
    dask_options = [option for option, value in given if value]
    if args.executor == "local" and dask_options:
        raise UsageError(
            f"{' and '.join(dask_options)}: only with --executor dask",
            "drop them, or run with --executor dask",
        )
    if args.scheduler and args.workers:
        raise UsageError(
            "--workers starts a local cluster; with --scheduler the cluster's workers are used",
            "start more workers on the machines: dask worker ADDRESS --nthreads 1",
        )
    return args.executor or ("dask" if dask_options else "local")


def run(args: argparse.Namespace) -> int:
    """The command line as `run_bundle` options; progress printed to stdout."""
    from uet_doit.run.budget import parse_budget_args  # lazy: start-up time

    root = Path.cwd()
    path = Path(args.bundle)
    budgets = parse_budget_args(args.budget)  # a bad --budget is reported before anything
    executor = executor_choice(args)
    if args.dry_run:
        return _dry_run(args, root, path)
    from uet_doit.api import run_bundle  # lazy: start-up time
    from uet_doit.tools.redact import short_secret_warning  # lazy: start-up time

    if warning := short_secret_warning(os.environ):  # once per run, before any tool starts
        print(warning, file=sys.stderr)
    outcome = run_bundle(
        path,
        root,
        out=sys.stdout,
        jobs=args.jobs,
        parallel_type=args.parallel_type,
        keep_going=args.keep_going,
        resume=args.resume,
        skip_workstreams=args.skip_workstream or (),
        tasks=args.tasks,
        reporter=args.reporter,
        verbosity=args.verbosity,
        budgets=budgets,
        argv=sys.argv,
        cache=args.cache,
        cache_store=args.cache_store,
        executor=executor,
        scheduler=args.scheduler,
        dask_workers=args.workers or 2,
        shared_fs=not args.no_shared_fs,
        into=args.into,
    )
    bundle = outcome.bundle
    if bundle is not None and (args.sync_plan or bundle.metadata.get("sync_plan") is True):
        from uet_doit.plans.sync import sync_after_run  # lazy: start-up time

        print("\n".join(sync_after_run(bundle, root).lines()))
    return outcome.exit_code


def _dry_run(args: argparse.Namespace, root: Path, path: Path) -> int:
    """What would run and cost, checked as a run would be; nothing recorded."""
    from uet_doit.bundle.loader import load_bundle  # lazy: start-up time
    from uet_doit.observe.dry_run import dry_run  # lazy: start-up time
    from uet_doit.tools.routing import default_known_tools  # lazy: start-up time

    bundle = load_bundle(path, root, known_tools=default_known_tools())
    check_tasks(bundle, str(path), args.tasks, skipped_steps(bundle, args.skip_workstream or ()))
    found = dry_run(bundle, root, args.budget, args.skip_workstream, (args.cache, args.cache_store))
    verbosity = args.verbosity if args.verbosity is not None else 1
    lines = render_costs.forecast(found.bundle, found.data, verbosity)
    print("\n".join(lines + render_costs.cache_forecast(found.cache)))
    return EXIT_OK
