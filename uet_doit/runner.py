"""One `uet run`: lock the project, open or resume a run, hand the bundle to doit, close it.

It composes the layers below it, as api.py does: run/ runs, observe/ prints the progress
and reads the run back, the cache's store is configured here.

Run statuses: running, succeeded, failed, interrupted, paused. Exit codes follow doit
(0 ok, 1 a step failed, 2 runtime error, 3 bad bundle/usage) plus 4 paused, 130 interrupted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from uet_doit.bundle.checks import missing_inputs
from uet_doit.bundle.effective import effective_tool
from uet_doit.bundle.model import Bundle
from uet_doit.cache.stores import configured_store
from uet_doit.errors import (
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_PAUSED,
    UsageError,
)
from uet_doit.observe.progress import choose_reporter
from uet_doit.observe.recorded import recorded
from uet_doit.observe.status import criterion_line
from uet_doit.run.budget import CostLedger, apply_overrides
from uet_doit.run.context import RunContext, RunSettings, new_run_id
from uet_doit.run.doit.action import Runtime, stop_every_run
from uet_doit.run.doit.compiler import signature, step_definition
from uet_doit.run.doit.loader import DEP_FILE, BundleTaskLoader, run_doit
from uet_doit.run.doit.run_actions import RunActions
from uet_doit.run.doit.task_names import skipped_steps
from uet_doit.run.gates import evaluate_criteria
from uet_doit.run.review.criteria import CriterionJudge
from uet_doit.run.scheduling import learned_schedule
from uet_doit.run.workspaces.isolation import end_isolation, start_isolation
from uet_doit.state.doit_backend import check_dep_file
from uet_doit.state.project import project_lock
from uet_doit.state.records import CriterionState, EventKind, RunState, StepState
from uet_doit.state.store import RunStore
from uet_doit.tools.process import run_process
from uet_doit.tools.routing import load_router_config

if TYPE_CHECKING:
    from uet_doit.run.executors.dask.executor import DaskExecutor


@dataclass(frozen=True)
class RunOptions(RunSettings):
    """What a caller asks of one run (`uet run`'s options, `run_bundle(**options)`)."""

    jobs: int = 1
    parallel_type: str = "process"
    keep_going: bool = False
    resume: str | None = None
    skip_workstreams: Sequence[str] = ()
    tasks: Sequence[str] = ()
    reporter: str | None = None
    verbosity: int | None = None
    budgets: dict[str, float] = field(default_factory=dict)
    argv: Sequence[str] = field(default_factory=list)
    into: str | None = None  # the branch isolated steps land on (default: the checked-out one)


def bundle_hash(bundle: Bundle) -> str:
    return hashlib.sha256(bundle.model_dump_json().encode()).hexdigest()[:16]


def changed_steps(store: RunStore, run_id: str, bundle: Bundle) -> list[str]:
    """Steps whose definition differs from the one the run planned (or last attempted)."""
    planned = store.step_signatures(run_id)
    changed = []
    for ws, step in bundle.steps():
        before = planned.get(step.step_id)
        if before is not None and before != signature(step_definition(bundle, ws, step)):
            changed.append(step.step_id)
    return changed


#: the most steps `uet run` runs at once (docs/runs.md): more only adds contention
MAX_JOBS = 64


def effective_jobs(requested: int, runnable: int) -> int:
    """`-n` capped at the steps that can run and at MAX_JOBS (never below 1)."""
    return max(1, min(requested, runnable, MAX_JOBS))


def _new_run_id(store: RunStore, bundle_id: str) -> str:
    run_id = new_run_id(bundle_id)
    n = 1
    while store.run(run_id) is not None:
        n += 1
        run_id = f"{new_run_id(bundle_id)}-{n}"
    return run_id


def execute(bundle: Bundle, bundle_file: Path, root: Path, opts: RunOptions, out: TextIO) -> int:
    """`run_loaded` for callers that only want the exit code: progress goes to `out`, the
    stream the caller gives (never a default stdout: the library prints nothing of itself)."""
    return run_loaded(bundle, bundle_file, root, opts, out)[1]


def run_loaded(
    bundle: Bundle, bundle_file: Path, root: Path, opts: RunOptions, out: TextIO
) -> tuple[str, int]:
    """Run a loaded bundle: its run id and exit code; progress and the doit reporter write to
    `out` only (`uet_doit.run_bundle` reads the outcome from the store)."""
    router = load_router_config(root)  # a broken router_config.json stops us here, clearly
    if opts.budgets:
        bundle = apply_overrides(bundle, dict(opts.budgets))
    check_dep_file(root / DEP_FILE)  # never written into when it is not doit's
    with RunStore(root) as store:
        return _run_with(bundle, bundle_file, root, opts, out, store, router)


def _run_with(
    bundle: Bundle,
    bundle_file: Path,
    root: Path,
    opts: RunOptions,
    out: TextIO,
    store: RunStore,
    router: Any,
) -> tuple[str, int]:
    store.check_writable()
    store.mark_dead_runs()
    digest = bundle_hash(bundle)
    changed: list[str] | None = None
    if opts.resume:
        row = store.run(opts.resume)
        if row is None:
            raise UsageError(f"no run {opts.resume!r} in {store.path}", "list runs with `uet runs`")
        if row.bundle_id != bundle.bundle_id:
            msg = f"run {opts.resume} ran bundle {row.bundle_id!r}, not {bundle.bundle_id!r}"
            raise UsageError(msg, "resume it with the bundle file it ran")
        run_id = opts.resume
        if row.bundle_hash and row.bundle_hash != digest:
            changed = changed_steps(store, run_id, bundle)
    else:
        run_id = _new_run_id(store, bundle.bundle_id)
    skip = skipped_steps(bundle, opts.skip_workstreams)

    ctx = dataclasses.replace(
        RunContext.create(
            run_id, bundle.bundle_id, root, opts, stop_on_failure=not opts.keep_going
        ),
        cache_store=configured_store(root, opts.cache_store, dict(os.environ)),
    )
    with project_lock(root, run_id), ExitStack() as cluster:
        out.write(f"run {run_id}" + (" (resumed)" if opts.resume else "") + "\n")
        jobs = effective_jobs(opts.jobs, sum(1 for _, s in bundle.steps() if s.step_id not in skip))
        ctx = dataclasses.replace(ctx, jobs=jobs)
        executor = _open_executor(cluster, ctx, jobs, out)
        if changed is not None:
            out.write(
                f"bundle changed since run {run_id}; changed steps re-plan: "
                f"{', '.join(changed) or 'none (only settings changed)'}\n"
            )
        missing = missing_inputs(bundle, root, skip)
        if missing:
            out.write(
                "warning: input files that do not exist and that no step creates: "
                + ", ".join(f"{path} ({step})" for step, path in missing[:10])
                + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
                + "\n"
            )
        # before the run is recorded: a repository unfit for landing stops it cleanly
        ctx = start_isolation(bundle, root, ctx, opts.into, store, out)

        cluster.enter_context(Runtime.opened(ctx, executor))  # closed however the run ends
        CostLedger(store, ctx.session).drop_stale_reservations()
        store.start_run(
            run_id,
            bundle.bundle_id,
            bundle_file=str(bundle_file),
            bundle_hash=digest,
            argv=list(opts.argv),
            jobs=opts.jobs,
            resume=bool(opts.resume),
        )
        signatures = {
            s.step_id: signature(step_definition(bundle, ws, s)) for ws, s in bundle.steps()
        }
        store.plan_steps(
            run_id,
            [
                (
                    s.step_id,
                    ws.ws_id,
                    effective_tool(bundle, ws, s),
                    StepState.SKIPPED if s.step_id in skip else StepState.PENDING,
                    signatures[s.step_id],
                )
                for ws, s in bundle.steps()
            ],
        )
        for ws_id in opts.skip_workstreams:
            store.event(run_id, EventKind.WORKSTREAM_SKIPPED, None, ws_id=ws_id)
        if skip:
            out.write(f"skipping {len(skip)} step(s): {', '.join(sorted(skip))}\n")
        marked = [f"{s.step_id} ({s.skip})" for _, s in bundle.steps() if s.skip]
        store.set_step_states(
            [
                (run_id, s.step_id, StepState.SKIPPED, ws.ws_id, None, f"skip: {s.skip}")
                for ws, s in bundle.steps()
                if s.skip
            ]
        )
        if marked:
            out.write(f"marked in the bundle, not run: {', '.join(marked)}\n")
        out.flush()
        code = _run_doit(bundle, root, opts, ctx, skip, store, signatures, out)
        end_isolation(ctx, store)
        if executor is not None and executor.lost is not None:
            return run_id, _scheduler_lost(executor.lost, bundle_file, store, ctx, out)
        if code == EXIT_INTERRUPTED:
            out.write(f"\ninterrupted; resume with: uet run {bundle_file} --resume {run_id}\n")
            return run_id, code
        return run_id, _close(bundle, bundle_file, root, store, ctx, code, router, out)


def _open_executor(
    stack: ExitStack, ctx: RunContext, jobs: int, out: TextIO
) -> DaskExecutor | None:
    """`--executor dask`: the cluster is up (or reached) and checked before any step starts,
    and closed when the run ends, however it ends."""
    if ctx.executor != "dask":
        return None
    from uet_doit.run.executors.dask.executor import dask_session  # lazy: start-up time

    executor = stack.enter_context(dask_session(ctx, jobs))
    where = f"scheduler {ctx.scheduler}" if ctx.scheduler else f"local cluster {executor.address}"
    out.write(f"dask: {executor.workers.count()} worker(s) at {where}\n")
    for note in executor.notes:
        out.write(f"warning: {note}\n")
    out.flush()
    return executor


def _scheduler_lost(
    why: str, bundle_file: Path, store: RunStore, ctx: RunContext, out: TextIO
) -> int:
    """The scheduler went away: attempts in flight are lost (their tools may have run to the
    end on the workers); the steps that did not land run again on resume."""
    store.end_run(ctx.run_id, RunState.FAILED, why)
    out.write(
        f"run {ctx.run_id} stopped: {why}\n"
        f"steps that had not finished will run again with: "
        f"uet run {bundle_file} --resume {ctx.run_id} --executor dask\n"
    )
    return EXIT_ERROR


def _run_doit(
    bundle: Bundle,
    root: Path,
    opts: RunOptions,
    ctx: RunContext,
    skip: frozenset[str],
    store: RunStore,
    signatures: dict[str, str],
    out: TextIO,
) -> int:
    """doit keeps going (--continue); steps stop themselves after a failure unless -c, so
    steps outside an exhausted budget still run. Steps run in threads: each tool is its own
    process anyway, and a thread cannot be lost the way a killed doit worker process is."""
    runnable = sum(1 for _, s in bundle.steps() if s.step_id not in skip)
    jobs = effective_jobs(opts.jobs, runnable)
    args = ["run", "--continue"]
    if jobs > 1:
        args += ["-n", str(jobs), "-P", "thread"]
    if opts.verbosity is not None:
        args += ["--verbosity", str(opts.verbosity)]
    base = bundle.task_basename
    args += [t if ":" in t or t == base else f"{base}:{t}" for t in opts.tasks] or [base]
    reporter = recorded(choose_reporter(opts.reporter, out))

    loader = BundleTaskLoader(
        bundle,
        root,
        RunActions(ctx),
        skip=skip,
        reporter=reporter,
        signatures=signatures,
        schedule=learned_schedule(bundle, store),
        extra_config={"outfile": out},  # the reporter prints where the caller asked
    )

    main = threading.current_thread() is threading.main_thread()  # signals go to it only
    previous = signal.signal(signal.SIGTERM, _term_as_interrupt) if main else None
    try:
        return run_doit(loader, args)
    except KeyboardInterrupt:
        stop_every_run()  # the tools of every run of this process, and what they left behind
        store.end_run(ctx.run_id, RunState.INTERRUPTED, "interrupted (Ctrl-C or SIGTERM)")
        return EXIT_INTERRUPTED
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _close(
    bundle: Bundle,
    bundle_file: Path,
    root: Path,
    store: RunStore,
    ctx: RunContext,
    code: int,
    router: Any,
    out: TextIO,
) -> int:
    """Completion criteria, the run's final state and reason, the exit code."""
    run_id = ctx.run_id
    states = set(store.step_states(run_id).values())
    unmet, paused = _report_criteria(bundle, root, store, ctx, out)
    if code == 0 and unmet:
        code = EXIT_FAILED
    failed = StepState.FAILED in states or bool(unmet)
    step_paused = code != 0 and not failed and StepState.PAUSED in states
    if step_paused or (code == 0 and paused):  # a paused review: its criterion not judged
        code = EXIT_PAUSED
    elif code != 0 and states & {StepState.FAILED, StepState.BLOCKED, StepState.NOT_STARTED}:
        code = EXIT_FAILED  # doit says 2 when dependents of a failed step could not run
    status = {0: RunState.SUCCEEDED, EXIT_PAUSED: RunState.PAUSED}.get(code, RunState.FAILED)
    reason = None if code == 0 else _failure_reason(store, run_id)
    store.end_run(run_id, status, reason)
    if code == EXIT_PAUSED:
        out.write(
            f"run {run_id} PAUSED: {reason}\n"
            "raise the budget in the bundle (or --budget SCOPE=DOLLARS) and run again: "
            "only the steps not done yet will run\n"
        )
        notify = bundle.notify or router.notify
        if notify is not None:
            _notify(notify.command, root, run_id, bundle.bundle_id, store, out)
    elif code != 0:
        out.write(
            f"run {run_id} {status}; see `uet status {run_id}`; "
            f"resume with: uet run {bundle_file} --resume {run_id}\n"
        )
    return code if code in (0, 1, EXIT_PAUSED) else EXIT_ERROR


def _report_criteria(
    bundle: Bundle, root: Path, store: RunStore, ctx: RunContext, out: TextIO
) -> tuple[list[str], list[str]]:
    """Evaluate completion criteria (sentences by their reviewer, through the run's
    runtime); print the checklist; return the unmet ones, and those whose review a spent
    budget paused."""
    reviews = bundle.review is not None or any(ws.review for ws in bundle.workstreams)
    judge = CriterionJudge(bundle, root, Runtime.for_context(ctx)) if reviews else None
    results = evaluate_criteria(bundle, root, store, ctx.run_id, judge)
    if not results:
        return [], []

    out.write("completion criteria:\n")
    for r in results:
        out.write(f"  {criterion_line(r)}\n")
    unmet = [
        f"{r['scope']}: {r['description']}" for r in results if r["state"] == CriterionState.UNMET
    ]
    return unmet, [f"{r['scope']}: {r['detail']}" for r in results if r.get("paused")]


def _failure_reason(store: RunStore, run_id: str) -> str:
    rows = store.run_steps(run_id)
    parts = []
    unmet = [
        str(e.data.get("description"))
        for e in store.events(run_id, kinds=[EventKind.CRITERION])
        if e.data.get("state") == CriterionState.UNMET
    ]
    if unmet:
        parts.append(f"completion criteria unmet: {'; '.join(unmet)}")
    paused = {r.message for r in rows if r.status == StepState.PAUSED and r.message}
    paused |= {
        str(e.data.get("detail"))
        for e in store.events(run_id, kinds=[EventKind.CRITERION])
        if e.data.get("paused")
    }
    parts.extend(sorted(paused))
    for state in (StepState.FAILED, StepState.BLOCKED, StepState.NOT_STARTED):
        steps = [r.step_id for r in rows if r.status == state]
        if steps:
            parts.append(f"{state.replace('_', ' ')}: {', '.join(steps)}")
    return "; ".join(parts) or "doit reported an error"


def _notify(
    command: Sequence[str], root: Path, run_id: str, bundle_id: str, store: RunStore, out: TextIO
) -> None:
    """The bundle's notify command; facts go in environment variables, never into a shell."""
    pauses = store.events(run_id, kinds=[EventKind.BUDGET_PAUSED])
    data = pauses[0].data if pauses else {}
    env = dict(os.environ)
    env.update(
        {
            "UET_RUN_ID": run_id,
            "UET_BUNDLE_ID": bundle_id,
            "UET_BUDGET": str(data.get("budget", "")),
            "UET_SPENT": f"{data.get('spent', 0):.6f}",
            "UET_LIMIT": f"{data.get('limit', 0):.6f}",
            "UET_REASON": str(data.get("message", "")),
        }
    )
    try:
        result = run_process(list(command), cwd=root, env=env, timeout=60)
    except FileNotFoundError:
        out.write(f"warning: notify command not found: {command[0]}\n")
        return
    store.event(run_id, EventKind.NOTIFIED, None, command=list(command), exit_code=result.exit_code)
    if result.exit_code != 0:
        out.write(f"warning: notify command exited {result.exit_code}\n")


def _term_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
