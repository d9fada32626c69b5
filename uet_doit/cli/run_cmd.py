"""`uet run FILE [options] [TASK...]`: check the command line against the bundle, then run.

Everything a user can get wrong on the command line (a task that does not exist, a bad
budget, a skipped workstream's step) is a usage error found here, before a run is recorded:
no run id is spent and no resume hint is printed for a typo.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from uet_doit.cli.parsing import EXIT_CODES, Subcommands, add_command, add_log_level
from uet_doit.errors import UsageError

if TYPE_CHECKING:
    from uet_doit.bundle.model import Bundle


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


def task_names(bundle: Bundle, skipped: frozenset[str] = frozenset()) -> dict[str, bool]:
    """Every name `uet run` accepts for a bundle (without the `BASE:` prefix), each with
    whether this run has it: a workstream whose steps are all skipped is left out, with its
    gates, as the compiler leaves it out of doit's tasks; a workstream without steps is none."""
    from uet_doit.run.step_spec import gate_task_name

    names = {bundle.task_basename: True}
    for ws in bundle.workstreams:
        if not ws.steps:
            continue
        kept = any(step.step_id not in skipped for step in ws.steps)
        names.update({step.step_id: step.step_id not in skipped for step in ws.steps})
        names.update({gate_task_name(ws.ws_id, i, g): kept for i, g in enumerate(ws.test_gates)})
        names[ws.ws_id] = kept
    names.update({gate_task_name("bundle", i, g): True for i, g in enumerate(bundle.test_gates)})
    return names


def check_tasks(
    bundle: Bundle, bundle_file: str, tasks: Sequence[str], skipped: frozenset[str]
) -> None:
    """UsageError naming every TASK the bundle does not have, or that the run would skip."""
    base = bundle.task_basename
    known = task_names(bundle, skipped)
    unknown, skipped_named = [], []
    for task in tasks:
        name = task.removeprefix(f"{base}:") if task != base else task
        if name not in known:
            unknown.append(task)
        elif not known[name]:
            skipped_named.append(task)
    if unknown:
        bare = [t.removeprefix(f"{base}:") for t in unknown]
        close = [m for t in bare for m in difflib.get_close_matches(t, list(known), n=1)]
        hint = (f"did you mean {' or '.join(map(repr, close))}? " if close else "") + (
            f"`uet list {bundle_file}` lists its steps; workstream ids, gates and "
            f"{base!r} (everything) are tasks too"
        )
        names = ", ".join(repr(t) for t in unknown)
        raise UsageError(f"{bundle_file}: bundle {bundle.bundle_id} has no task {names}", hint)
    marked = {s.step_id: s.skip for _, s in bundle.steps() if s.skip}
    if skipped_named and all(t.removeprefix(f"{base}:") in marked for t in skipped_named):
        names = ", ".join(
            f"{t!r} (skip: {marked[t.removeprefix(f'{base}:')]})" for t in skipped_named
        )
        raise UsageError(
            f"{names}: marked not to run in {bundle_file} (done in the plan it was converted from)",
            "remove the step's `skip` to run it again",
        )
    if skipped_named:
        names = ", ".join(repr(t) for t in skipped_named)
        raise UsageError(
            f"{names}: skipped by --skip-workstream (or depends on a skipped workstream)",
            "drop the task or the --skip-workstream",
        )


def run(args: argparse.Namespace) -> int:
    from uet_doit.bundle.loader import load_bundle
    from uet_doit.run.budget import parse_budget_args
    from uet_doit.run.runner import RunOptions, execute, skipped_steps

    root = Path.cwd()
    path = Path(args.bundle)
    budgets = parse_budget_args(args.budget)  # a bad --budget is reported before anything
    executor = executor_choice(args)
    bundle = load_bundle(path, root, remember=not args.dry_run)
    skipped = skipped_steps(bundle, args.skip_workstream or ())
    check_tasks(bundle, str(path), args.tasks, skipped)
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
    from uet_doit.tools.redact import short_secret_warning

    if warning := short_secret_warning(os.environ):  # once per run, before any tool starts
        print(warning, file=sys.stderr)
    code = execute(bundle, path, root, opts)
    if args.sync_plan or bundle.metadata.get("sync_plan") is True:
        from uet_doit.plans.sync import sync_after_run

        print("\n".join(sync_after_run(bundle, root).lines()))
    return code
